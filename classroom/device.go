package classroom

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Device tokens mark a browser that signed in to an account before (see login.go): a
// successful sign-in answers one ("device"), the client keeps it and sends it with its next
// sign-ins to that account. It is "<id>.<expiry>.<mac>": a random id, a Unix time, and an
// HMAC under the sign-in key of the account, id and expiry. It grants nothing by itself (the
// password is still checked); it only says whose budget an attempt is counted against.
// Nothing about it is stored: the failures of a device are kept like an address's.
const (
	deviceTTL   = loginKnownFor
	maxDeviceID = 32
)

// randomID returns a fresh random id (128 bits): a device's, a sign-in's.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// deviceToken signs a device token for account and id, valid for deviceTTL from now.
func (s *Service) deviceToken(account, id string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(deviceTTL).Unix(), 10)
	return id + "." + exp + "." + s.deviceMAC(account, id, exp)
}

func (s *Service) deviceMAC(account, id, exp string) string {
	m := hmac.New(sha256.New, []byte(s.signInKey))
	m.Write([]byte("sanke sign-in device v1\x00" + account + "\x00" + id + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// deviceID returns the id of a device token valid for account at now, or false.
func (s *Service) deviceID(account, token string, now time.Time) (string, bool) {
	if token == "" || len(token) > 128 {
		return "", false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || len(parts[0]) > maxDeviceID {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", false
	}
	if !hmac.Equal([]byte(parts[2]), []byte(s.deviceMAC(account, parts[0], parts[1]))) {
		return "", false
	}
	return parts[0], true
}
