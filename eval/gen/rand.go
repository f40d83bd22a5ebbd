package gen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// rng is the scenario's one source of randomness, with helpers for the
// shapes of AWS identifiers.
type rng struct{ *rand.Rand }

func newRNG(seed uint64) *rng { return &rng{rand.New(rand.NewPCG(seed, 0x6d7573756269))} }

const (
	hexDigits   = "0123456789abcdef"
	upperAlnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	lowerAlnum  = "abcdefghijklmnopqrstuvwxyz0123456789"
	upperLetter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

func (r *rng) chars(n int, alphabet string) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func (r *rng) hex(n int) string { return r.chars(n, hexDigits) }

// between returns an integer in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// chance is true with probability p.
func (r *rng) chance(p float64) bool { return r.Float64() < p }

func pick[T any](r *rng, xs []T) T { return xs[r.IntN(len(xs))] }

// uuid is a random version-4 UUID.
func (r *rng) uuid() string {
	h := r.hex(32)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + string("89ab"[r.IntN(4)]) + h[17:20] + "-" + h[20:32]
}

func (r *rng) account() string  { return fmt.Sprintf("%012d", r.Int64N(9e11)+1e11) }
func (r *rng) instance() string { return "i-0" + r.hex(16) }
func (r *rng) eni() string      { return "eni-0" + r.hex(16) }

// accessKey is a 20-character key id: AKIA for an IAM user's long-term
// key, ASIA for temporary credentials.
func (r *rng) accessKey(prefix string) string { return prefix + r.chars(16, upperAlnum) }

// principalID is the unique id of a user (AIDA…) or role (AROA…).
func (r *rng) principalID(prefix string) string { return prefix + r.chars(17, upperAlnum) }

// deploymentID is a CodeDeploy deployment id: d- and nine upper-case
// letters or digits.
func (r *rng) deploymentID() string { return "d-" + r.chars(9, upperAlnum) }

// benchIP is an internet address from the benchmarking range
// 198.18.0.0/15, never a real one.
func (r *rng) benchIP() string {
	return fmt.Sprintf("198.%d.%d.%d", r.between(18, 19), r.between(0, 255), r.between(2, 254))
}

func (r *rng) privateIP(subnet int) string {
	return fmt.Sprintf("10.%d.%d.%d", r.between(0, 3), subnet, r.between(4, 250))
}

// within returns a time in [t, t+d).
func (r *rng) within(t time.Time, d time.Duration) time.Time {
	return t.Add(time.Duration(r.Int64N(int64(d))))
}
