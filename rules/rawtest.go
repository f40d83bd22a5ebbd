package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ocsf"
)

// rawDecoder normalizes the raw records of inline tests. It is the decoder
// the pipeline runs, with its default limits, so a test sees exactly the
// event the engine would. Decoder.Decode keeps no state between calls.
var rawDecoder = ingest.NewDecoder(ingest.DefaultLimits())

// rawTestEvent normalizes the raw record of an inline test: raw is the record
// as its source delivers it, either as a string (a CloudTrail or GuardDuty
// JSON record, a VPC flow-log line in the default format, a Falco JSON line,
// an agent event) or as a YAML mapping, which is encoded as JSON first.
// source names the source as `musubi ingest -source` does (cloudtrail,
// vpcflow, guardduty, agent, falco; auto detects it). The record must
// normalize to exactly one event.
func rawTestEvent(source string, raw any) (ocsf.Event, error) {
	var ev ocsf.Event
	if strings.TrimSpace(source) == "" {
		return ev, errors.New("source is required with raw (cloudtrail, vpcflow, guardduty, agent, falco or auto)")
	}
	src, err := ingest.ParseSource(source)
	if err != nil {
		return ev, err
	}
	var data []byte
	switch v := raw.(type) {
	case string:
		data = []byte(v)
	case map[string]any, []any:
		if data, err = json.Marshal(v); err != nil {
			return ev, fmt.Errorf("raw: %v", err)
		}
	default:
		return ev, fmt.Errorf("raw: got %T, want a string or a mapping", raw)
	}
	events, errs := rawDecoder.Decode(src, data)
	if len(errs) > 0 {
		return ev, fmt.Errorf("raw %s record: %v", src, errs[0])
	}
	if len(events) != 1 {
		return ev, fmt.Errorf("raw %s record: normalized to %d events, want exactly 1", src, len(events))
	}
	return events[0], nil
}
