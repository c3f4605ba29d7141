package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Object keys. A recording is stored under
//
//	<prefix><name of the room>/<recording id>/
//
// with one file per participant and source, <name of the identity>_<source>[_<n>].<ext>,
// and manifest.json. Names of rooms and identities come from clients, so they are escaped
// (keyName): the mapping is one-to-one, plain ASCII names stay readable, and the result is
// safe as an S3 key and as a file name on any local file system.
//
// Access is never decided on a key: the API serves a recording to a token for the exact
// room its manifest names (see catalog).

// maxKeyName bounds an escaped name (bytes): a file name, with the suffixes the spool adds,
// stays under the 255 bytes of common file systems and a key far under S3's 1024.
const maxKeyName = 160

// keyHashLen is the length of the hash that ends a shortened name (128 bits, in hex).
const keyHashLen = 32

// keyName escapes a room or identity into a single key component: bytes outside
// [A-Za-z0-9_.-] become %XX (so do '%', '/', '\\', spaces, control characters and every byte
// of a non-ASCII character), as does a leading '.', so that no component is "." or ".." or
// hidden. The mapping is one-to-one (unescapeKeyName reverses it). A name whose escaped form
// exceeds maxKeyName is cut, on a character boundary, and ends with "~" and a hash of the
// whole name: '~' never appears otherwise, so such names stay distinct from the others and,
// short of a SHA-256 collision, from each other. The empty name is "~".
func keyName(s string) string {
	if s == "" {
		return "~"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keySafe(c) && (i > 0 || c != '.') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	out := b.String()
	if len(out) <= maxKeyName {
		return out
	}
	cut := maxKeyName - 1 - keyHashLen
	// Do not split an escape: %XX starts at most two bytes before the cut.
	if i := strings.LastIndexByte(out[:cut], '%'); i >= cut-2 {
		cut = i
	}
	sum := sha256.Sum256([]byte(s))
	return out[:cut] + "~" + hex.EncodeToString(sum[:])[:keyHashLen]
}

func keySafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// unescapeKeyName reverses keyName. It reports false for a shortened name (the rest of the
// name is only in its hash) and for a component keyName cannot have produced.
func unescapeKeyName(k string) (string, bool) {
	if k == "~" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '%' && i+2 < len(k):
			v, err := strconv.ParseUint(k[i+1:i+3], 16, 8)
			if err != nil || k[i+1:i+3] != strings.ToUpper(k[i+1:i+3]) {
				return "", false
			}
			b.WriteByte(byte(v))
			i += 2
		case keySafe(c) && (i > 0 || c != '.'):
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	s := b.String()
	return s, keyName(s) == k
}

// legacyKeyName is how releases before the escaping named rooms and identities in keys (a
// many-to-one mapping: "class 1", "class:1" and "class_1" were all "class_1"). Only used to
// find recordings stored in that layout; their manifests name the exact room.
func legacyKeyName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		case c > 127:
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), ".")
	if out == "" {
		out = "_"
	}
	return out
}

// sessionPrefix is the key prefix of a recording.
func (r *Recorder) sessionPrefix(roomName, id string) string {
	return r.opts.Prefix + keyName(roomName) + "/" + id + "/"
}

// roomPrefixes are the key prefixes that may hold recordings of a room: its own and, for
// recordings stored before the escaping, the legacy one (shared with other rooms).
func (r *Recorder) roomPrefixes(roomName string) []string {
	p := []string{r.opts.Prefix + keyName(roomName) + "/"}
	if l := r.opts.Prefix + legacyKeyName(roomName) + "/"; l != p[0] {
		p = append(p, l)
	}
	return p
}

// fileName names a participant's file in a recording: the n-th file (from 1) of the group
// ("camera" or "screen_share") of identity. The suffixes are such that no two (identity,
// group, n, ext) give the same name.
func fileName(identity, group string, n int, ext string) string {
	name := keyName(identity) + "_" + group
	if n > 1 {
		name += "_" + strconv.Itoa(n)
	}
	return name + ext
}

// fileOwner reads the participant and source back from a file name (fileName). ok is false
// when the identity cannot be read (a shortened name, or a name in no known layout).
func fileOwner(name string) (identity, source string, ok bool) {
	base := strings.TrimSuffix(name, path.Ext(name))
	if i := strings.LastIndexByte(base, '_'); i > 0 {
		if n, err := strconv.Atoi(base[i+1:]); err == nil && n > 1 && strconv.Itoa(n) == base[i+1:] {
			base = base[:i]
		}
	}
	for _, g := range []string{"screen_share", "camera"} {
		if head, found := strings.CutSuffix(base, "_"+g); found {
			id, ok := unescapeKeyName(head)
			return id, g, ok
		}
	}
	return "", "", false
}
