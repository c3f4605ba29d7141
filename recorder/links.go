package recorder

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Download links of recording files. A listing hands out, for each file, a link that works
// without any other credential until it expires:
//
//	/api/v1/recordings/{id}/files/{name}?expires=<unix seconds>&sig=<base64url HMAC-SHA256>
//
// The HMAC covers the method, the path and the expiry, under a key derived from the API
// secret, so links stay valid across restarts and on every node that shares the keys, and a
// link opens exactly one file, only with GET (or HEAD), only until it expires. Nothing in
// the link is a token: it can end up in logs or a browser history without giving anything
// more than that file for that time.

// linkKeyLabel separates the link key from every other use of the API secret.
const linkKeyLabel = "sanke recording download links v1"

// linkSigner signs and checks download links.
type linkSigner struct {
	key    []byte
	expiry time.Duration
}

// newLinkSigner derives the link key from the API secret; without one (a recorder that only
// recovers recordings) links hold for the life of the process.
func newLinkSigner(apiSecret string, expiry time.Duration) linkSigner {
	secret := []byte(apiSecret)
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(linkKeyLabel))
	return linkSigner{key: m.Sum(nil), expiry: expiry}
}

// filePath is the download route of a file; each (id, name) has its own path.
func filePath(id, name string) string {
	return "/api/v1/recordings/" + url.PathEscape(id) + "/files/" + url.PathEscape(name)
}

func (l linkSigner) mac(method, path string, expires int64) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(method + "\n" + path + "\n" + strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}

// link returns the signed download link of a file, valid for the signer's expiry from now.
func (l linkSigner) link(id, name string, now time.Time) string {
	p := filePath(id, name)
	exp := now.Add(l.expiry).Unix()
	q := url.Values{"expires": {strconv.FormatInt(exp, 10)}, "sig": {base64.RawURLEncoding.EncodeToString(l.mac(http.MethodGet, p, exp))}}
	return p + "?" + q.Encode()
}

// Errors of signed links.
var (
	errLinkInvalid = errors.New("the link's signature is not valid for this file")
	errLinkExpired = errors.New("the link has expired: list the recordings again for a new one")
)

// verify checks a request's signed link for the file (id, name).
func (l linkSigner) verify(req *http.Request, id, name string, now time.Time) error {
	q := req.URL.Query()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return errLinkInvalid
	}
	sig, err := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err != nil {
		return errLinkInvalid
	}
	method := req.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if !hmac.Equal(sig, l.mac(method, filePath(id, name), exp)) {
		return errLinkInvalid
	}
	if now.Unix() > exp {
		return errLinkExpired
	}
	return nil
}
