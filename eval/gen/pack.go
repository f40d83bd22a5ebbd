package gen

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/ingest"
)

// pack groups the records into delivery files as each source delivers
// them, decodes every file with ingest.Decoder, and returns the files, the
// metadata.uid of the events of each label, the entities ("kind:value")
// each label's events carry ("*" for all) and the number of records.
func pack(w *world, recs []record, r *rng) ([]File, map[string][]string, map[string]map[string]bool, int, error) {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].t.Before(recs[j].t) })
	type group struct {
		path   string
		src    source
		custom bool
		acct   string
		recs   []record
	}
	groups := map[string]*group{}
	var order []string
	gz := r.chance(0.5) // S3 deliveries gzip-compressed or not, by scenario
	ext := func(s string) string {
		if gz {
			return s + ".gz"
		}
		return s
	}
	for _, rec := range recs {
		var key string
		switch rec.src {
		case srcCloudTrail:
			at := rec.t.Add(rec.lag).Truncate(5 * time.Minute).Add(5 * time.Minute)
			key = fmt.Sprintf("cloudtrail/AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%s.json", rec.account, w.region, at.Format("2006/01/02"),
				rec.account, w.region, at.Format("20060102T1504Z"), hash16(rec.account+at.String()))
			key = ext(key)
		case srcFlow:
			at := rec.t.Truncate(10 * time.Minute).Add(10 * time.Minute)
			fl := w.flowLogV2
			if rec.custom {
				fl = w.flowLogCustom
			}
			key = ext(fmt.Sprintf("vpcflow/AWSLogs/%s/vpcflowlogs/%s/%s/%s_vpcflowlogs_%s_%s_%s_%s.log", rec.account, w.region, at.Format("2006/01/02"),
				rec.account, w.region, fl, at.Format("20060102T1504Z"), strings.ToLower(hash16(fl + at.String()))[:8]))
		case srcGuardDuty:
			key = fmt.Sprintf("guardduty/%s/%s.json", rec.t.Format("2006-01-02"), rec.body["id"])
		case srcAgent:
			key = fmt.Sprintf("agent/%s/%s.jsonl", rec.host, rec.t.Truncate(15*time.Minute).Format("20060102T1504Z"))
		case srcFalco:
			key = fmt.Sprintf("falco/%s/%s.json", rec.host, rec.t.Truncate(15*time.Minute).Format("20060102T1504Z"))
		}
		g, ok := groups[key]
		if !ok {
			g = &group{path: key, src: rec.src, custom: rec.custom, acct: rec.account}
			groups[key] = g
			order = append(order, key)
		}
		g.recs = append(g.recs, rec)
	}
	sort.Strings(order)
	dec := ingest.NewDecoder(ingest.DefaultLimits())
	uids := map[string][]string{}
	seen := map[string]map[string]bool{"*": {}}
	var files []File
	for _, key := range order {
		g := groups[key]
		var buf bytes.Buffer
		switch g.src {
		case srcCloudTrail:
			bodies := make([]any, len(g.recs))
			for i, rec := range g.recs {
				bodies[i] = rec.body
			}
			if err := json.NewEncoder(&buf).Encode(obj{"Records": bodies}); err != nil {
				return nil, nil, nil, 0, err
			}
		case srcFlow:
			if g.custom {
				buf.WriteString(flowHeaderCustom + "\n")
			} else {
				buf.WriteString(flowHeaderV2 + "\n")
			}
			for _, rec := range g.recs {
				buf.WriteString(rec.flow.line(g.custom, rec.account, rec.t) + "\n")
			}
		case srcGuardDuty:
			data, err := json.MarshalIndent(g.recs[0].body, "", " ")
			if err != nil {
				return nil, nil, nil, 0, err
			}
			buf.Write(append(data, '\n'))
		default:
			enc := json.NewEncoder(&buf)
			for _, rec := range g.recs {
				if err := enc.Encode(rec.body); err != nil {
					return nil, nil, nil, 0, err
				}
			}
		}
		data := buf.Bytes()
		if strings.HasSuffix(key, ".gz") {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z) // no name, no time: the same bytes every run
			zw.Write(data)
			zw.Close()
			data = z.Bytes()
		}
		events, errs := dec.Decode(ingest.SourceAuto, data)
		if len(errs) > 0 {
			return nil, nil, nil, 0, fmt.Errorf("%s does not decode: %s: %v", key, errs[0].Reason, errs[0].Err)
		}
		if len(events) != len(g.recs) {
			return nil, nil, nil, 0, fmt.Errorf("%s: %d records decoded into %d events", key, len(g.recs), len(events))
		}
		for i, ev := range events {
			l := g.recs[i].label
			if l != labelBenign {
				uids[l] = append(uids[l], ev.Metadata.UID)
			}
			if seen[l] == nil {
				seen[l] = map[string]bool{}
			}
			for _, o := range ev.Observables {
				seen[l][string(o.Entity)+":"+o.Value] = true
				seen["*"][string(o.Entity)+":"+o.Value] = true
			}
		}
		files = append(files, File{Path: key, Data: append([]byte(nil), data...)})
	}
	sortFiles(files)
	return files, uids, seen, len(recs), nil
}

// gunzip returns the text of a gzip stream (for tests and tools).
func gunzip(data []byte) (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(zr)
	return b.String(), err
}
