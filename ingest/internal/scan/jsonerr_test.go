package scan

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestPlain(t *testing.T) {
	var v struct {
		Detail struct {
			Object struct{ Bucket string } `json:"object"`
		} `json:"detail"`
	}
	err := Plain(json.Unmarshal([]byte(`{"detail":{"object":"nope"}}`), &v))
	var se *Error
	if !errors.As(err, &se) || se.Reason != ReasonWrongType || se.Msg != "detail.object: unexpected JSON string" {
		t.Errorf("type error: got %v, want wrong_type naming detail.object and the JSON type", err)
	}
	syntax := json.Unmarshal([]byte(`{`), &v)
	if got := Plain(syntax); got != syntax {
		t.Errorf("syntax error: got %v, want it unchanged", got)
	}
	if Plain(nil) != nil {
		t.Error("nil: got an error")
	}
}
