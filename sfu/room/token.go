package room

import (
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// Refreshed tokens let a client reconnect after its original token expired: a 45-minute
// class on a flaky rural link reconnects many times, long after a short-lived join token.
const (
	refreshTokenTTL   = 10 * time.Minute
	refreshTokenEvery = 5 * time.Minute
)

// refreshToken sends the participant a fresh token carrying its current grants, signed with
// the key it joined with. Without keys configured it does nothing.
func (p *Participant) refreshToken() {
	keys := p.room.cfg.Keys
	if keys == nil || p.apiKey == "" {
		return
	}
	secret := keys.GetSecret(p.apiKey)
	if secret == "" {
		return
	}
	p.mu.Lock()
	g := p.grants.Clone()
	if g.Video == nil {
		g.Video = &auth.VideoGrant{}
	}
	g.Video.UpdateFromPermission(p.permission)
	name, md, attrs := p.name, p.metadata, cloneMap(p.attributes)
	p.mu.Unlock()

	at := auth.NewAccessToken(p.apiKey, secret).
		SetIdentity(p.identity).
		SetName(name).
		SetMetadata(md).
		SetAttributes(attrs).
		SetKind(g.GetParticipantKind()).
		SetVideoGrant(g.Video).
		SetValidFor(refreshTokenTTL)
	jwt, err := at.ToJWT()
	if err != nil {
		p.logger.Warn("refresh token", "err", err)
		return
	}
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RefreshToken{RefreshToken: jwt}})
	p.mu.Lock()
	p.tokenSentAt = time.Now()
	p.mu.Unlock()
}

// refreshTokenDue reports whether the participant's last token is old enough to renew.
func (p *Participant) refreshTokenDue(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed && p.sink != nil && now.Sub(p.tokenSentAt) >= refreshTokenEvery
}
