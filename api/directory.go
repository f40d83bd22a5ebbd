package api

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Directory lists the principals incidents can be assigned to besides the
// API's token names: analysts without a token of their own (an e-mail
// address, a name in the SOC's rota) and teams. It is the api section's
// own configuration (api.analysts, api.teams).
type Directory struct {
	// Analysts may be assigned incidents of every tenant.
	Analysts []string `yaml:"analysts"`
	// Teams maps a team's name to its members (token names or analysts).
	Teams map[string][]string `yaml:"teams"`
}

// Validate reports every problem of d at once.
func (d Directory) Validate() error {
	var errs []error
	for i, a := range d.Analysts {
		if !assigneePattern.MatchString(a) || a == "me" || a == "none" {
			errs = append(errs, fmt.Errorf("api.analysts[%d]: %q is not a name of letters, digits and . _ : @ + - (1 to 128), nor me or none", i, a))
		}
		if slices.IndexFunc(d.Analysts[:i], func(b string) bool { return strings.EqualFold(a, b) }) >= 0 {
			errs = append(errs, fmt.Errorf("api.analysts[%d]: %q is listed twice", i, a))
		}
	}
	for name, members := range d.Teams {
		if !assigneePattern.MatchString(name) || name == "none" {
			errs = append(errs, fmt.Errorf("api.teams: %q is not a team name of letters, digits and . _ : @ + - (1 to 128), nor none", name))
		}
		for _, m := range members {
			if !assigneePattern.MatchString(m) {
				errs = append(errs, fmt.Errorf("api.teams.%s: member %q is not a name", name, m))
			}
		}
	}
	return errors.Join(errs...)
}

// knownAssignee reports whether name may be assigned an incident of
// tenant: a configured analyst, or the name of a token of analyst role or
// above that covers the tenant.
func (s *Server) knownAssignee(name, tenant string) bool {
	if slices.Contains(s.opts.Directory.Analysts, name) {
		return true
	}
	s.tokens.mu.RLock()
	defer s.tokens.mu.RUnlock()
	for _, t := range s.tokens.byHash {
		if t.Name == name && t.Role.rank() >= RoleAnalyst.rank() &&
			(slices.Contains(t.Tenants, AllTenants) || slices.Contains(t.Tenants, tenant)) {
			return true
		}
	}
	return false
}

// knownTeam reports whether name is a configured team.
func (s *Server) knownTeam(name string) bool {
	_, ok := s.opts.Directory.Teams[name]
	return ok
}

// checkPrincipals returns the problems of a patch's assignee and team for
// an incident of tenant: each must be known (empty unassigns).
func (s *Server) checkPrincipals(p incidentPatch, tenant string) []string {
	var errs []string
	if p.Assignee != nil && *p.Assignee != "" && !s.knownAssignee(*p.Assignee, tenant) {
		errs = append(errs, fmt.Sprintf("assignee %s is not a known analyst of this incident's tenant (a token name with the analyst or admin role, or one of api.analysts)", quote(*p.Assignee)))
	}
	if p.Team != nil && *p.Team != "" && !s.knownTeam(*p.Team) {
		teams := make([]string, 0, len(s.opts.Directory.Teams))
		for t := range s.opts.Directory.Teams {
			teams = append(teams, t)
		}
		slices.Sort(teams)
		errs = append(errs, fmt.Sprintf("team %s is not a configured team (%s)", quote(*p.Team), strings.Join(teams, ", ")))
	}
	return errs
}
