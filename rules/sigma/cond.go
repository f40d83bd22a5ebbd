package sigma

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// node is a parsed Sigma condition.
type node struct {
	op   string // "sel", "not", "and", "or"; "1 of" and "all of" become or and and
	name string // selection name, for "sel"
	kids []*node
}

// parseCondition parses a Sigma condition over the selection names.
// Aggregations (a "|" pipe) and near are not supported.
func parseCondition(s string, names []string) (*node, error) {
	if strings.Contains(s, "|") {
		return nil, fmt.Errorf("condition %q: aggregations (count, near, ...) are not supported; use a correlation rule", s)
	}
	p := &condParser{toks: tokenize(s), names: names}
	n, err := p.or()
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", s, err)
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("condition %q: unexpected %q", s, p.toks[p.i])
	}
	return n, nil
}

func tokenize(s string) []string {
	var out []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r == '(' || r == ')':
			flush()
			out = append(out, string(r))
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out
}

type condParser struct {
	toks  []string
	i     int
	names []string
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *condParser) or() (*node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "or") {
		p.i++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &node{op: "or", kids: []*node{l, r}}
	}
	return l, nil
}

func (p *condParser) and() (*node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "and") {
		p.i++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &node{op: "and", kids: []*node{l, r}}
	}
	return l, nil
}

func (p *condParser) unary() (*node, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("unexpected end")
	case strings.EqualFold(t, "not"):
		p.i++
		k, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{op: "not", kids: []*node{k}}, nil
	case t == "(":
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.i++
		return n, nil
	case t == "1" || strings.EqualFold(t, "all") || strings.EqualFold(t, "any"):
		p.i++
		if !strings.EqualFold(p.peek(), "of") {
			return nil, fmt.Errorf("%q must be followed by of", t)
		}
		p.i++
		pat := p.peek()
		if pat == "" {
			return nil, fmt.Errorf("of needs a pattern")
		}
		p.i++
		var kids []*node
		for _, n := range p.names {
			if ok, _ := path.Match(pat, n); ok || pat == "them" {
				kids = append(kids, &node{op: "sel", name: n})
			}
		}
		if len(kids) == 0 {
			return nil, fmt.Errorf("%s of %s: no selection matches", t, pat)
		}
		op := "or"
		if strings.EqualFold(t, "all") {
			op = "and"
		}
		if len(kids) == 1 {
			return kids[0], nil
		}
		return &node{op: op, kids: kids}, nil
	case t == ")" || strings.EqualFold(t, "and") || strings.EqualFold(t, "or"):
		return nil, fmt.Errorf("unexpected %q", t)
	default:
		p.i++
		if !slices.Contains(p.names, t) {
			return nil, fmt.Errorf("unknown selection %q", t)
		}
		return &node{op: "sel", name: t}, nil
	}
}
