package signaling

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// httpError is a refusal answered before the websocket upgrade: status and plain-text body.
type httpError struct {
	status int
	msg    string
	cause  error // logged only; may be nil
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func unauthorized(msg string, cause error) *httpError {
	return &httpError{status: http.StatusUnauthorized, msg: msg, cause: cause}
}

func badRequest(msg string, cause error) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: msg, cause: cause}
}

// verifiedToken is what a valid access token says.
type verifiedToken struct {
	apiKey    string
	grants    *auth.ClaimGrants
	expiresAt time.Time
}

// requestToken returns the access token of r: the Authorization bearer token, else the
// access_token query parameter.
func requestToken(r *http.Request) (string, *httpError) {
	if h := r.Header.Get("Authorization"); h != "" {
		const prefix = "bearer "
		if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
			return "", unauthorized("invalid authorization header, must be: Bearer <token>", nil)
		}
		return strings.TrimSpace(h[len(prefix):]), nil
	}
	if t := r.URL.Query().Get("access_token"); t != "" {
		return t, nil
	}
	return "", unauthorized("missing access token", nil)
}

// verifyToken checks raw's signature against its API key's secret, its expiry, and that it
// grants joining a named room as a named participant.
func verifyToken(raw string, keys auth.KeyProvider) (verifiedToken, *httpError) {
	v, err := auth.ParseAPIToken(raw)
	if err != nil {
		return verifiedToken{}, unauthorized("invalid authorization token", err)
	}
	secret := keys.GetSecret(v.APIKey())
	if secret == "" {
		return verifiedToken{}, unauthorized("invalid API key", fmt.Errorf("unknown key %q", v.APIKey()))
	}
	claims, grants, err := v.Verify(secret)
	if err != nil {
		// The reason (expired, bad signature) helps the developer and reveals nothing secret.
		return verifiedToken{}, unauthorized("invalid authorization token: "+err.Error(), nil)
	}
	switch {
	case grants.Video == nil || !grants.Video.RoomJoin:
		return verifiedToken{}, unauthorized("permissions denied: token lacks the roomJoin grant", nil)
	case grants.Video.Room == "":
		return verifiedToken{}, unauthorized("permissions denied: token names no room", nil)
	case grants.Identity == "":
		return verifiedToken{}, unauthorized("permissions denied: token has no identity", nil)
	}
	vt := verifiedToken{apiKey: v.APIKey(), grants: grants}
	if claims != nil && claims.ExpiresAt != nil {
		vt.expiresAt = claims.ExpiresAt.Time
	}
	return vt, nil
}

// parseBool reads the SDKs' boolean query values: "1" or "true".
func parseBool(s string) bool {
	return s == "1" || strings.EqualFold(s, "true")
}

// joinFromQuery builds the JoinRequest of a /rtc connection from its query parameters, as the
// LiveKit SDKs send them.
func joinFromQuery(q url.Values, tok verifiedToken, address string) (rooms.JoinRequest, *httpError) {
	req := newJoinRequest(tok)
	req.AutoSubscribe = true
	if v := q.Get("auto_subscribe"); v != "" {
		req.AutoSubscribe = parseBool(v)
	}
	req.AdaptiveStream = parseBool(q.Get("adaptive_stream"))
	req.Reconnect = parseBool(q.Get("reconnect"))
	if req.Reconnect {
		req.ParticipantSID = q.Get("sid")
	}
	if v := q.Get("reconnect_reason"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return rooms.JoinRequest{}, badRequest("invalid reconnect_reason", err)
		}
		req.ReconnectReason = livekit.ReconnectReason(n)
	}
	req.ClientInfo = clientInfoFromQuery(q)
	req.ClientInfo.Address = address
	if v := q.Get("attributes"); v != "" {
		attrs, err := decodeAttributes(v)
		if err != nil {
			return rooms.JoinRequest{}, badRequest("cannot decode attributes", err)
		}
		req.Attributes = attrs
	}
	if herr := checkSelfUpdate(req.Grants, "", req.Attributes); herr != nil {
		return rooms.JoinRequest{}, herr
	}
	return req, nil
}

// joinFromProto builds the JoinRequest of a single PeerConnection (/rtc/v1) connection from
// its join_request query parameter.
func joinFromProto(q url.Values, tok verifiedToken, address string, maxBytes int) (rooms.JoinRequest, *httpError) {
	param := q.Get("join_request")
	if param == "" {
		return rooms.JoinRequest{}, badRequest("join_request is required", nil)
	}
	pj, err := decodeWrappedJoinRequest(param, maxBytes)
	if err != nil {
		return rooms.JoinRequest{}, badRequest("invalid join_request", err)
	}
	if herr := checkSelfUpdate(tok.grants, pj.GetMetadata(), pj.GetParticipantAttributes()); herr != nil {
		return rooms.JoinRequest{}, herr
	}
	req := newJoinRequest(tok)
	req.ProtoJoinRequest = pj
	req.AutoSubscribe = pj.GetConnectionSettings().GetAutoSubscribe()
	req.AdaptiveStream = pj.GetConnectionSettings().GetAdaptiveStream()
	req.Reconnect = pj.GetReconnect()
	req.ReconnectReason = pj.GetReconnectReason()
	if req.Reconnect {
		req.ParticipantSID = pj.GetParticipantSid()
	}
	req.Attributes = pj.GetParticipantAttributes()
	req.ClientInfo = pj.GetClientInfo()
	if req.ClientInfo == nil {
		req.ClientInfo = &livekit.ClientInfo{}
	}
	req.ClientInfo.Address = address
	return req, nil
}

func newJoinRequest(tok verifiedToken) rooms.JoinRequest {
	return rooms.JoinRequest{
		APIKey:         tok.apiKey,
		Grants:         tok.grants,
		RoomName:       tok.grants.Video.Room,
		Identity:       tok.grants.Identity,
		TokenExpiresAt: tok.expiresAt,
	}
}

// checkSelfUpdate refuses client-requested metadata or attributes unless the token grants
// canUpdateOwnMetadata.
func checkSelfUpdate(grants *auth.ClaimGrants, metadata string, attrs map[string]string) *httpError {
	if (metadata != "" || len(attrs) > 0) && !grants.Video.GetCanUpdateOwnMetadata() {
		return unauthorized("permissions denied: setting metadata or attributes requires canUpdateOwnMetadata", nil)
	}
	return nil
}

// parseSDK maps an "sdk" query value ("js", "go", "reactnative", ...) to its enum: the enum
// name in lower case, or one of the historical aliases.
func parseSDK(s string) livekit.ClientInfo_SDK {
	switch s = strings.ToLower(s); s {
	case "ios":
		return livekit.ClientInfo_SWIFT
	case "reactnative":
		return livekit.ClientInfo_REACT_NATIVE
	case "unityweb":
		return livekit.ClientInfo_UNITY_WEB
	}
	if v, ok := livekit.ClientInfo_SDK_value[strings.ToUpper(s)]; ok {
		return livekit.ClientInfo_SDK(v)
	}
	return livekit.ClientInfo_UNKNOWN
}

// clientInfoFromQuery describes the client from the query parameters the SDKs send.
func clientInfoFromQuery(q url.Values) *livekit.ClientInfo {
	ci := &livekit.ClientInfo{
		Sdk:            parseSDK(q.Get("sdk")),
		Version:        q.Get("version"),
		Os:             q.Get("os"),
		OsVersion:      q.Get("os_version"),
		DeviceModel:    q.Get("device_model"),
		Browser:        q.Get("browser"),
		BrowserVersion: q.Get("browser_version"),
		Network:        q.Get("network"),
	}
	if n, err := strconv.ParseInt(q.Get("protocol"), 10, 32); err == nil {
		ci.Protocol = int32(n)
	}
	if n, err := strconv.ParseInt(q.Get("client_protocol"), 10, 32); err == nil {
		ci.ClientProtocol = int32(n)
	}
	for name := range strings.SplitSeq(q.Get("capabilities"), ",") {
		if v, ok := livekit.ClientInfo_Capability_value[strings.TrimSpace(name)]; ok {
			ci.Capabilities = append(ci.Capabilities, livekit.ClientInfo_Capability(v))
		}
	}
	return ci
}

// ClientAddress is the client's IP address: the TCP peer, or with trustProxy (the server is
// reached only through a reverse proxy) the address that proxy saw. That is the last
// X-Forwarded-For entry, not the first: a proxy appends the peer it saw to whatever the client
// sent, so every entry but the last can be forged by the client. X-Real-IP (which a proxy
// sets, replacing the client's) is used when there is no X-Forwarded-For.
func ClientAddress(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if last = strings.TrimSpace(last); last != "" {
				return last
			}
		}
		if ip := strings.TrimSpace(r.Header.Get("X-Real-IP")); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// requestHost returns the host the client addressed: X-Forwarded-Host (its first entry)
// when proxy headers are trusted and it is set, else the request's Host.
func requestHost(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
			first, _, _ := strings.Cut(fh, ",")
			return strings.TrimSpace(first)
		}
	}
	return r.Host
}

// decodeBase64URL decodes base64url with or without padding (the Go SDK pads, others may not).
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// decodeAttributes decodes the "attributes" query parameter: base64url of a JSON object of
// strings.
func decodeAttributes(s string) (map[string]string, error) {
	data, err := decodeBase64URL(s)
	if err != nil {
		return nil, err
	}
	var attrs map[string]string
	if err := json.Unmarshal(data, &attrs); err != nil {
		return nil, err
	}
	return attrs, nil
}

// errJoinRequestTooLarge means a join_request decompresses to more than the size limit.
var errJoinRequestTooLarge = errors.New("join request too large")

// decodeWrappedJoinRequest decodes the "join_request" query parameter: base64url of a
// livekit.WrappedJoinRequest whose payload is a marshalled livekit.JoinRequest, possibly
// gzipped. The payload may not exceed maxBytes once decompressed.
func decodeWrappedJoinRequest(s string, maxBytes int) (*livekit.JoinRequest, error) {
	data, err := decodeBase64URL(s)
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	var wrapped livekit.WrappedJoinRequest
	if err := proto.Unmarshal(data, &wrapped); err != nil {
		return nil, fmt.Errorf("wrapped join request: %w", err)
	}
	payload := wrapped.GetJoinRequest()
	switch wrapped.GetCompression() {
	case livekit.WrappedJoinRequest_NONE:
	case livekit.WrappedJoinRequest_GZIP:
		if payload, err = gunzip(payload, maxBytes); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported compression %v", wrapped.GetCompression())
	}
	if len(payload) > maxBytes {
		return nil, errJoinRequestTooLarge
	}
	var jr livekit.JoinRequest
	if err := proto.Unmarshal(payload, &jr); err != nil {
		return nil, fmt.Errorf("join request: %w", err)
	}
	return &jr, nil
}

// gunzip decompresses data, refusing output larger than maxBytes (a gzip bomb).
func gunzip(data []byte, maxBytes int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer func() { _ = zr.Close() }() // only read from; ReadAll reported any corruption
	out, err := io.ReadAll(io.LimitReader(zr, int64(maxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(out) > maxBytes {
		return nil, errJoinRequestTooLarge
	}
	return out, nil
}
