package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/musubi-xdr/musubi/api"
)

// The API tests check every response they get against the OpenAPI
// document (api/openapi.json): the operation is found by path template and
// method, the response by status code, the media type by Content-Type,
// and the body is validated by a JSON Schema 2020-12 validator (OpenAPI
// 3.1's dialect). A status the operation does not document, a media type
// it does not list or a body its schema refuses fails the test.

// responseValidator validates responses against the OpenAPI document.
type responseValidator struct {
	doc   map[string]any
	ops   []docOperation
	mu    sync.Mutex
	comp  *jsonschema.Compiler
	cache map[string]*jsonschema.Schema
}

// docOperation is one documented path template, as a pattern.
type docOperation struct {
	template string
	pattern  *regexp.Regexp
	// greedy: the last parameter may span slashes ({value...} routes).
	greedy bool
}

var (
	validatorOnce sync.Once
	validator     *responseValidator
	validatorErr  error
)

const openapiURL = "https://musubi.invalid/openapi.json"

// openapiValidator returns the shared validator of api/openapi.json.
func openapiValidator() (*responseValidator, error) {
	validatorOnce.Do(func() {
		var doc map[string]any
		if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
			validatorErr = err
			return
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI()))
		if err != nil {
			validatorErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		if err := c.AddResource(openapiURL, inst); err != nil {
			validatorErr = err
			return
		}
		v := &responseValidator{doc: doc, comp: c, cache: map[string]*jsonschema.Schema{}}
		paths, _ := doc["paths"].(map[string]any)
		param := regexp.MustCompile(`\\\{[A-Za-z_]+\\\}`)
		for tmpl := range paths {
			quoted := regexp.QuoteMeta(tmpl)
			exact := param.ReplaceAllString(quoted, `[^/]+`)
			v.ops = append(v.ops, docOperation{template: tmpl, pattern: regexp.MustCompile("^" + exact + "$")})
			if locs := param.FindAllStringIndex(quoted, -1); len(locs) > 0 && locs[len(locs)-1][1] == len(quoted) {
				last := locs[len(locs)-1]
				greedy := param.ReplaceAllString(quoted[:last[0]], `[^/]+`) + `.+`
				v.ops = append(v.ops, docOperation{template: tmpl, pattern: regexp.MustCompile("^" + greedy + "$"), greedy: true})
			}
		}
		// Exact templates before greedy ones, literal segments before
		// parameters: /v1/incidents/bulk is not /v1/incidents/{id}.
		slices.SortStableFunc(v.ops, func(a, b docOperation) int {
			if a.greedy != b.greedy {
				if a.greedy {
					return 1
				}
				return -1
			}
			return strings.Count(a.template, "{") - strings.Count(b.template, "{")
		})
		validator = v
	})
	return validator, validatorErr
}

// pointer escapes tokens into a JSON pointer usable as a URL fragment.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		b.WriteString("/" + url.PathEscape(t))
	}
	return b.String()
}

// resolve follows a local $ref of the document.
func (v *responseValidator) resolve(obj map[string]any) (map[string]any, string, error) {
	ref, ok := obj["$ref"].(string)
	if !ok {
		return obj, "", nil
	}
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, "", fmt.Errorf("$ref %s is not local", ref)
	}
	var cur any = v.doc
	var tokens []string
	for _, t := range strings.Split(ptr, "/") {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		tokens = append(tokens, t)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("$ref %s does not resolve", ref)
		}
		cur = m[t]
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, "", fmt.Errorf("$ref %s does not resolve to an object", ref)
	}
	return m, pointer(tokens...), nil
}

// schema compiles (once) the schema at the fragment ptr of the document.
func (v *responseValidator) schema(ptr string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[ptr]; ok {
		return s, nil
	}
	s, err := v.comp.Compile(openapiURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	v.cache[ptr] = s
	return s, nil
}

// validate checks one response: nil when the document describes it.
func (v *responseValidator) validate(method, rawPath string, code int, contentType string, body []byte) error {
	p := rawPath
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	var tmpl string
	for _, op := range v.ops {
		if op.pattern.MatchString(p) {
			tmpl = op.template
			break
		}
	}
	if tmpl == "" {
		// No documented path: the API answers a problem document (404,
		// 405, or 400 for a path that is not canonical).
		if code != 400 && code != 404 && code != 405 {
			return fmt.Errorf("undocumented path answered %d", code)
		}
		return v.validateBody(pointer("components", "schemas", "Problem"), "application/problem+json", contentType, body)
	}
	ops, _ := v.doc["paths"].(map[string]any)[tmpl].(map[string]any)
	op, ok := ops[strings.ToLower(method)].(map[string]any)
	if !ok {
		if code == 405 {
			return v.validateBody(pointer("components", "schemas", "Problem"), "application/problem+json", contentType, body)
		}
		return fmt.Errorf("%s %s is not documented, yet answered %d", method, tmpl, code)
	}
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[strconv.Itoa(code)].(map[string]any)
	respPtr := pointer("paths", tmpl, strings.ToLower(method), "responses", strconv.Itoa(code))
	if !ok {
		return fmt.Errorf("%s %s documents no response %d (body %.200s)", method, tmpl, code, body)
	}
	resp, refPtr, err := v.resolve(resp)
	if err != nil {
		return err
	}
	if refPtr != "" {
		respPtr = refPtr
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("%s %s %d: documented without a body, got %.200s", method, tmpl, code, body)
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%s %s %d: Content-Type %q: %v", method, tmpl, code, contentType, err)
	}
	media, ok := content[mt].(map[string]any)
	if !ok {
		return fmt.Errorf("%s %s %d: Content-Type %s is not documented (documented: %v)", method, tmpl, code, mt, keys(content))
	}
	if _, ok := media["schema"]; !ok {
		return fmt.Errorf("%s %s %d %s: no schema documented", method, tmpl, code, mt)
	}
	if err := v.validateBody(respPtr+pointer("content", mt, "schema"), mt, contentType, body); err != nil {
		return fmt.Errorf("%s %s %d: %w", method, tmpl, code, err)
	}
	return nil
}

func (v *responseValidator) validateBody(schemaPtr, wantType, contentType string, body []byte) error {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt != wantType {
		return fmt.Errorf("got Content-Type %q, want %s", contentType, wantType)
	}
	s, err := v.schema(schemaPtr)
	if err != nil {
		return fmt.Errorf("compiling the schema at %s: %v", schemaPtr, err)
	}
	var inst any = string(body)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("the body is not JSON: %v (%.200s)", err, body)
		}
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("the body does not match the schema at %s: %v (body %.300s)", schemaPtr, err, body)
	}
	return nil
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIValidatorRefuses: the validator the API tests run every
// response through fails what the document does not describe.
func TestOpenAPIValidatorRefuses(t *testing.T) {
	v, err := openapiValidator()
	if err != nil {
		t.Fatal(err)
	}
	problem := `{"type":"about:blank","title":"Not Found","status":404,"detail":"no such incident","request_id":"r1"}`
	for _, c := range []struct {
		name, method, path string
		code               int
		ct, body           string
		ok                 bool
	}{
		{"a documented problem", "GET", "/v1/incidents/inc-1", 404, "application/problem+json", problem, true},
		{"an undocumented status", "GET", "/v1/incidents/inc-1", 418, "application/problem+json", problem, false},
		{"an undocumented media type", "GET", "/v1/incidents/inc-1", 404, "text/html", problem, false},
		{"a body of the wrong shape", "GET", "/v1/me", 200, "application/json", `{"name":7}`, false},
		{"a body that is not JSON", "GET", "/healthz", 200, "application/json", `ok`, false},
		{"a body where none is documented", "DELETE", "/v1/admin/tokens/t1", 204, "", `x`, false},
		{"an undocumented path answering 200", "GET", "/v2/x", 200, "application/json", `{}`, false},
		{"an undocumented path answering a problem", "GET", "/v2/x", 404, "application/problem+json", problem, true},
		{"an undocumented method", "PUT", "/v1/incidents/inc-1", 200, "application/json", `{}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.validate(c.method, c.path, c.code, c.ct, []byte(c.body))
			if (err == nil) != c.ok {
				t.Errorf("got error %v, want ok=%v", err, c.ok)
			}
		})
	}
}
