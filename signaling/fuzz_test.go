package signaling

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// The fuzz targets of the signaling decoder (issue 12, finding 10). Their seed corpora are in
// testdata/fuzz/<target>/ (real SDK messages and queries, and malformed ones); plain `go test`
// runs the seeds, `go test -run '^$' -fuzz '^FuzzSignalFrame$' -fuzztime 60s ./signaling/`
// explores further.

// FuzzSignalFrame feeds websocket frames (binary: protobuf, text: protojson) to the decoder
// of client messages. Whatever the bytes, decoding answers a request or an error, never a
// panic, and a decoded request can be encoded again in both framings (the server's answers
// and logs do that).
func FuzzSignalFrame(f *testing.F) {
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, text bool, frame []byte) {
		payload, err := readAtMost(bytes.NewReader(frame), limit)
		if err != nil {
			if len(frame) <= limit {
				t.Fatalf("readAtMost refused %d bytes under the %d limit: %v", len(frame), limit, err)
			}
			return
		}
		typ := websocket.BinaryMessage
		if text {
			typ = websocket.TextMessage
		}
		c := &conn{}
		req, err := c.decode(typ, payload)
		if c.useJSON.Load() != text {
			t.Fatalf("useJSON = %v after a text=%v frame", c.useJSON.Load(), text)
		}
		if err != nil {
			return
		}
		if _, err := proto.Marshal(req); err != nil {
			t.Fatalf("a decoded request does not encode as protobuf: %v", err)
		}
		if _, err := protojson.Marshal(req); err != nil {
			t.Fatalf("a decoded request does not encode as JSON: %v", err)
		}
		_ = req.GetMessage()
	})
}

// FuzzJoinQuery feeds /rtc and /rtc/v1 query strings to the join parsers, as the handler
// does before the upgrade. Whatever the query, parsing answers a join or a 400/401 refusal,
// never a panic; who joins which room comes from the token alone; and metadata or attributes
// are accepted only with canUpdateOwnMetadata.
func FuzzJoinQuery(f *testing.F) {
	f.Fuzz(func(t *testing.T, rawQuery string, canUpdate bool) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/rtc", RawQuery: rawQuery}, Header: http.Header{}}
		if _, herr := requestToken(r); herr != nil && herr.status != http.StatusUnauthorized {
			t.Fatalf("requestToken refused with %d", herr.status)
		}
		q := r.URL.Query()
		tok := testVerifiedToken(canUpdate)
		const addr = "192.0.2.7"

		req, herr := joinFromQuery(q, tok, addr)
		checkJoin(t, "joinFromQuery", req, herr, canUpdate)
		if herr == nil && len(req.Attributes) > 0 && !canUpdate {
			t.Fatalf("joinFromQuery: attributes %v accepted without canUpdateOwnMetadata", req.Attributes)
		}

		req, herr = joinFromProto(q, tok, addr, 64<<10)
		checkJoin(t, "joinFromProto", req, herr, canUpdate)
		if herr == nil && !canUpdate && (req.ProtoJoinRequest.GetMetadata() != "" || len(req.Attributes) > 0) {
			t.Fatal("joinFromProto: metadata or attributes accepted without canUpdateOwnMetadata")
		}
	})
}

// checkJoin asserts what holds for every parsed join: a refusal is a 400 or 401 with a
// message; a join names the token's room and identity and the connection's address.
func checkJoin(t *testing.T, what string, req rooms.JoinRequest, herr *httpError, canUpdate bool) {
	t.Helper()
	if herr != nil {
		if herr.status != http.StatusBadRequest && herr.status != http.StatusUnauthorized || herr.msg == "" {
			t.Fatalf("%s: refusal %d %q", what, herr.status, herr.msg)
		}
		return
	}
	want := testVerifiedToken(canUpdate)
	if req.RoomName != want.grants.Video.Room || req.Identity != want.grants.Identity || req.APIKey != want.apiKey {
		t.Fatalf("%s: joins room %q as %q with key %q: the query overrode the token", what, req.RoomName, req.Identity, req.APIKey)
	}
	if req.ClientInfo == nil || req.ClientInfo.GetAddress() != "192.0.2.7" {
		t.Fatalf("%s: client address %q, want the connection's", what, req.ClientInfo.GetAddress())
	}
}
