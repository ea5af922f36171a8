package pricing

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/carbuild/carbuild/shared/errs"
)

// maxReceiptLength bounds a receipt token read from a request; real ones
// are 43 characters.
const maxReceiptLength = 64

// newReceipt returns a receipt token (32 random bytes, base64url: 256 bits,
// unguessable) and the SHA-256 hash that is stored instead of it. A fast
// hash is enough: the token is random, not a password, so there is nothing
// to brute-force from the hash.
func newReceipt() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("receipt token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashReceipt(token), nil
}

func hashReceipt(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// encodeCursor makes a page token. It is opaque to clients but not secret:
// a forged one only moves within the caller's own orders.
func encodeCursor(c Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "/" + c.ID))
}

func decodeCursor(tok string) (Cursor, error) {
	bad := errs.New(errs.InvalidArgument, "page token %q is not one this API returned", errs.Truncate(tok))
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return Cursor{}, bad
	}
	micros, id, ok := strings.Cut(string(b), "/")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || !validOrderID(id) {
		return Cursor{}, bad
	}
	return Cursor{CreatedAt: time.UnixMicro(n).UTC(), ID: id}, nil
}
