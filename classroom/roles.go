package classroom

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/internal/rooms"
)

// Role is what a participant does in a class session. It decides its LiveKit grants.
type Role string

// Roles.
const (
	// RoleTeacher is the master classroom: publishes camera, microphone and screen, and
	// moderates (roomAdmin on its room: call on, mute, remove).
	RoleTeacher Role = "teacher"
	// RoleTeachingPoint is a receiving classroom of a delivery session: it publishes its
	// classroom camera; its microphone only while called on (or in free discussion).
	RoleTeachingPoint Role = "teaching_point"
	// RoleViewer is a receiving classroom of a broadcast session: subscribe only.
	RoleViewer Role = "viewer"
	// RoleResearch is a participant of a teaching research session (名师课堂): publishes and
	// subscribes freely.
	RoleResearch Role = "research"
	// RoleSupervisor is an inspector (巡课): hidden from the class, subscribe only; every
	// visit is written to the audit log.
	RoleSupervisor Role = "supervisor"
)

// Participant attributes Sanke sets. Clients read them from ParticipantInfo.attributes; they
// are set by the server only: they start with rooms.ReservedAttributePrefix, which every
// client path refuses, whatever the client's grants.
const (
	AttrRole      = rooms.ReservedAttributePrefix + "role"      // a Role
	AttrClassroom = rooms.ReservedAttributePrefix + "classroom" // classroom ID
	AttrSchool    = rooms.ReservedAttributePrefix + "school"    // school ID
	AttrSession   = rooms.ReservedAttributePrefix + "session"   // session ID
	AttrHand      = rooms.ReservedAttributePrefix + "hand"      // "raised" while the hand is up
	AttrCalledOn  = rooms.ReservedAttributePrefix + "called_on" // "true" while called on
	// AttrAccount marks a sign-in token (not a room token): the account it was issued to.
	AttrAccount = rooms.ReservedAttributePrefix + "account"
)

// RoleFor returns the role of a classroom in a session, or false when it does not belong to it.
func RoleFor(s *model.Session, classroom string) (Role, bool) {
	if s.Master == classroom {
		return RoleTeacher, true
	}
	if !s.HasReceiver(classroom) {
		return "", false
	}
	switch s.CourseType {
	case model.Research:
		return RoleResearch, true
	case model.Broadcast:
		return RoleViewer, true
	default:
		return RoleTeachingPoint, true
	}
}

// ParseRole checks a role name.
func ParseRole(s string) (Role, bool) {
	switch r := Role(s); r {
	case RoleTeacher, RoleTeachingPoint, RoleViewer, RoleResearch, RoleSupervisor:
		return r, true
	}
	return "", false
}

// Grant returns the LiveKit video grant of a role in a room. micOn gives a teaching point its
// microphone (called on, or free discussion); other roles ignore it.
func Grant(role Role, roomName string, micOn bool) *auth.VideoGrant {
	g := &auth.VideoGrant{RoomJoin: true, Room: roomName}
	g.SetCanUpdateOwnMetadata(false)
	switch role {
	case RoleTeacher:
		g.RoomAdmin = true
		g.SetCanPublish(true)
		g.SetCanSubscribe(true)
		g.SetCanPublishData(true)
		g.SetCanPublishSources([]livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE,
			livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO})
	case RoleTeachingPoint:
		g.SetCanPublish(true)
		g.SetCanSubscribe(true)
		g.SetCanPublishData(true)
		sources := []livekit.TrackSource{livekit.TrackSource_CAMERA}
		if micOn {
			sources = append(sources, livekit.TrackSource_MICROPHONE)
		}
		g.SetCanPublishSources(sources)
	case RoleResearch:
		g.SetCanPublish(true)
		g.SetCanSubscribe(true)
		g.SetCanPublishData(true)
		g.SetCanPublishSources([]livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE,
			livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO})
	case RoleSupervisor:
		g.Hidden = true
		fallthrough
	default: // viewer
		g.SetCanPublish(false)
		g.SetCanPublishData(false)
		g.SetCanSubscribe(true)
	}
	return g
}

// Permission returns the participant permission matching Grant, as pushed to a participant
// whose microphone is granted or withdrawn.
func Permission(role Role, micOn bool) *livekit.ParticipantPermission {
	return Grant(role, "", micOn).ToPermission()
}

// roomToken is a minted room token and what it contains.
type roomToken struct {
	Token     string            `json:"token"`
	Room      string            `json:"room"`
	Identity  string            `json:"identity"`
	Role      Role              `json:"role"`
	Session   string            `json:"session"`
	ExpiresAt string            `json:"expires_at"`
	URL       string            `json:"url,omitempty"`
	Grant     *auth.VideoGrant  `json:"grant"`
	Attrs     map[string]string `json:"attributes"`
}

// participantMetadata is the JSON metadata of a participant Sanke admits.
type participantMetadata struct {
	Session   string `json:"session"`
	Classroom string `json:"classroom,omitempty"`
	School    string `json:"school,omitempty"`
	Role      Role   `json:"role"`
	Account   string `json:"account,omitempty"`
}

// attributes returns the participant attributes of a classroom in a session.
func attributes(role Role, s *model.Session, classroom, school string) map[string]string {
	a := map[string]string{AttrRole: string(role), AttrSession: s.ID}
	if classroom != "" {
		a[AttrClassroom] = classroom
	}
	if school != "" {
		a[AttrSchool] = school
	}
	return a
}

// mint signs a room token. bound, when not nil, is the account it is issued to: the token
// works only as long as the account's credentials do (see revoke.go).
func (s *Service) mint(role Role, sess *model.Session, identity, name, classroom, school, account string, bound *model.Account) (*roomToken, error) {
	grant := Grant(role, sess.Room, false)
	attrs := attributes(role, sess, classroom, school)
	if bound != nil {
		maps.Copy(attrs, s.issuedTo(bound))
	}
	md, err := json.Marshal(participantMetadata{Session: sess.ID, Classroom: classroom, School: school, Role: role, Account: account})
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	// Valid until the session's room is no longer counted, at least a minute (clock skew).
	ttl := sess.End.Add(s.cfg.FinalizeDelay).Sub(now)
	if ttl < s.cfg.MinTokenTTL {
		ttl = s.cfg.MinTokenTTL
	}
	at := auth.NewAccessToken(s.cfg.APIKey, s.cfg.APISecret).
		SetIdentity(identity).SetName(name).SetVideoGrant(grant).SetAttributes(attrs).
		SetMetadata(string(md)).SetValidFor(ttl)
	jwt, err := at.ToJWT()
	if err != nil {
		return nil, fmt.Errorf("signing room token: %w", err)
	}
	return &roomToken{Token: jwt, Room: sess.Room, Identity: identity, Role: role, Session: sess.ID,
		ExpiresAt: now.Add(ttl).In(s.loc).Format("2006-01-02T15:04:05Z07:00"), URL: s.cfg.PublicURL, Grant: grant, Attrs: attrs}, nil
}
