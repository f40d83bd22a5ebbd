package scan

import (
	"encoding/json"
	"errors"
)

// Plain returns err, or, when it is an encoding/json type error (whose
// message prints whole Go struct types), a wrong_type Error naming only the
// field and the JSON type found. Decoders that use encoding/json for
// low-volume sources call it on their Unmarshal errors.
func Plain(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return Errorf(ReasonWrongType, te.Field+": unexpected JSON "+te.Value)
	}
	return err
}
