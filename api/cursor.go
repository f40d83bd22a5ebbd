package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
)

// Cursors are signed. The store's cursors are positions (a sort value, a
// tenant, an id); the API hands them out as base64url(position || MAC),
// where the MAC (HMAC-SHA256, 16 bytes) covers the position together with
// what it is a position in: the list (the queue, or one incident's
// evidence), every filter of the query that made it and the caller's
// tenants. A cursor that was not issued by this API for this query —
// forged, edited, or taken from another query or another tenant — is a
// 400 before it reaches storage.

const cursorMACBytes = 16

// cursorSigner signs and checks cursors with one key.
type cursorSigner struct{ key []byte }

func newCursorSigner(key []byte) cursorSigner {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return cursorSigner{key: slices.Clone(key)}
}

func (c cursorSigner) mac(scope, pos string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write([]byte(pos))
	return m.Sum(nil)[:cursorMACBytes]
}

// sign returns the cursor the client sees for store position pos; "" stays
// "" (no next page).
func (c cursorSigner) sign(scope, pos string) string {
	if pos == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte(pos), c.mac(scope, pos)...))
}

// open returns the store position of a client's cursor, or false when the
// cursor was not signed for scope.
func (c cursorSigner) open(scope, cursor string) (string, bool) {
	if cursor == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) <= cursorMACBytes {
		return "", false
	}
	pos, sig := string(b[:len(b)-cursorMACBytes]), b[len(b)-cursorMACBytes:]
	if !hmac.Equal(sig, c.mac(scope, pos)) {
		return "", false
	}
	return pos, true
}

// queueScope is what a cursor of queue ("incidents", "alerts") is bound
// to: the caller's tenants and every parameter of the query except the
// cursor and the page size.
func queueScope(queue string, v url.Values, tenants []string) string {
	rest := url.Values{}
	for k, vs := range v {
		if k != "cursor" && k != "limit" {
			rest[k] = vs
		}
	}
	return queue + "\x00" + strings.Join(tenants, ",") + "\x00" + rest.Encode()
}

// evidenceScope binds an evidence cursor to one incident and the caller's
// tenants.
func evidenceScope(incident string, tenants []string) string {
	return "evidence\x00" + strings.Join(tenants, ",") + "\x00" + incident
}
