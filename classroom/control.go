package classroom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/sfu/room"
)

// Class modes.
const (
	// ModeLecture: a teaching point's microphone is live only while it is called on.
	ModeLecture = "lecture"
	// ModeFree ("free discussion"): every teaching point's microphone is live.
	ModeFree = "free"
)

// Errors of classroom control, mapped to HTTP statuses by the API.
var (
	errNotInRoom   = errors.New("participant not in the room")
	errNotCallable = errors.New("only a teaching point can be called on")
)

// controller keeps the hand-raise / call-on / mode state of class rooms and applies it to
// participants as attributes and permissions (room.Manager.UpdateParticipant), so that every
// client sees it and the server enforces it: a teaching point that is not called on cannot
// publish its microphone (its grant lacks MICROPHONE; a published microphone is revoked when
// the call ends).
type controller struct {
	s *Service

	mu    sync.Mutex // serializes control operations
	rooms map[string]*roomState
}

type roomState struct {
	mode     string
	calledOn map[string]bool // identities
	hands    map[string]bool // identities with a raised hand
}

// ClassState is the control state of a room, as the API shows it.
type ClassState struct {
	Session  string   `json:"session"`
	Room     string   `json:"room"`
	Mode     string   `json:"mode"`
	CalledOn []string `json:"called_on"`
	Hands    []string `json:"hands"`
}

func newController(s *Service) *controller {
	return &controller{s: s, rooms: map[string]*roomState{}}
}

// stateLocked returns (creating it) the state of a room. Caller holds c.mu.
func (c *controller) stateLocked(roomName string) *roomState {
	st := c.rooms[roomName]
	if st == nil {
		st = &roomState{mode: ModeLecture, calledOn: map[string]bool{}, hands: map[string]bool{}}
		c.rooms[roomName] = st
	}
	return st
}

// handle applies the room's state to joining teaching points (a reconnecting classroom that
// was called on keeps its microphone; in free discussion everyone gets it). AdmitParticipant
// did so already as it joined; this catches a call that began or ended meanwhile.
func (c *controller) handle(ctx context.Context, e room.Event) {
	if e.Room == nil {
		return
	}
	name := e.Room.GetName()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Type {
	case room.EventRoomFinished:
		delete(c.rooms, name)
		return
	case room.EventParticipantLeft:
		if st := c.rooms[name]; st != nil {
			delete(st.hands, e.Participant.GetIdentity())
		}
		return
	case room.EventParticipantJoined:
	default:
		return
	}
	idx := c.s.Index()
	sess := idx.SessionByRoom(name)
	if sess == nil {
		return
	}
	_, role := identify(idx, sess, e.Participant)
	st := c.rooms[name]
	if role != RoleTeachingPoint || st == nil {
		return
	}
	id := e.Participant.GetIdentity()
	mic := st.calledOn[id] || st.mode == ModeFree
	if mic == hasMic(e.Participant) {
		return
	}
	attrs := map[string]string{AttrCalledOn: ""}
	if st.calledOn[id] {
		attrs[AttrCalledOn] = "true"
	}
	if _, err := c.s.rooms.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: name, Identity: id,
		Permission: Permission(RoleTeachingPoint, mic), Attributes: attrs}); err != nil {
		c.s.logger.Warn("applying the class to a teaching point's microphone", "room", name, "identity", id, "err", err)
	}
}

// participant returns a participant of a session's room with its role and classroom. A
// hidden participant (a supervisor, the recorder) is not there for class control: the
// answer is the same as for an identity nobody has, so that a teacher cannot tell whether
// a supervisor is watching.
func (c *controller) participant(ctx context.Context, sess *model.Session, identity string) (*livekit.ParticipantInfo, Role, string, error) {
	p, err := c.s.rooms.GetParticipant(ctx, sess.Room, identity)
	if err != nil || p.GetPermission().GetHidden() {
		return nil, "", "", fmt.Errorf("%w: %s", errNotInRoom, identity)
	}
	classroom, role := identify(c.s.Index(), sess, p)
	return p, role, classroom, nil
}

// raiseHand raises or lowers a participant's hand (attribute sanke.hand=raised). A hand
// already as asked changes nothing and tells nobody.
func (c *controller) raiseHand(ctx context.Context, sess *model.Session, identity string, raised bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, _, _, err := c.participant(ctx, sess, identity)
	if err != nil {
		return err
	}
	v := ""
	if raised {
		v = "raised"
	}
	st := c.stateLocked(sess.Room)
	if st.hands[identity] == raised && p.GetAttributes()[AttrHand] == v {
		return nil
	}
	if _, err := c.s.rooms.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: sess.Room, Identity: identity,
		Attributes: map[string]string{AttrHand: v}}); err != nil {
		return err
	}
	if raised {
		st.hands[identity] = true
	} else {
		delete(st.hands, identity)
	}
	return nil
}

// callOn grants a teaching point its microphone (permission with MICROPHONE, attribute
// sanke.called_on=true, hand lowered) and counts it. exclusive ends the other calls first.
// Calling on a teaching point that is called on already changes nothing, tells nobody and
// is not counted again.
func (c *controller) callOn(ctx context.Context, sess *model.Session, target, by string, exclusive bool) (*livekit.ParticipantInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, role, classroom, err := c.participant(ctx, sess, target)
	if err != nil {
		return nil, err
	}
	if role != RoleTeachingPoint {
		return nil, fmt.Errorf("%w (%s is %q)", errNotCallable, target, role)
	}
	st := c.stateLocked(sess.Room)
	if exclusive {
		for other := range st.calledOn {
			if other != target {
				if err := c.endLocked(ctx, sess, st, other); err != nil && !errors.Is(err, errNotInRoom) {
					return nil, err
				}
			}
		}
	}
	if st.calledOn[target] && hasMic(p) && p.GetAttributes()[AttrCalledOn] == "true" && p.GetAttributes()[AttrHand] == "" {
		return p, nil
	}
	info, err := c.s.rooms.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: sess.Room, Identity: target,
		Permission: Permission(RoleTeachingPoint, true), Attributes: map[string]string{AttrCalledOn: "true", AttrHand: ""}})
	if err != nil {
		return nil, err
	}
	st.calledOn[target] = true
	delete(st.hands, target)
	if err := c.s.store.AddCalledOn(ctx, sess.ID, classroom, by, c.s.clock.Now()); err != nil {
		c.s.logger.Error("recording a call-on", "session", sess.ID, "classroom", classroom, "err", err)
	}
	return info, nil
}

// endCallOn withdraws the microphone of a called-on teaching point (unless in free
// discussion); a published microphone track is unpublished by the server.
func (c *controller) endCallOn(ctx context.Context, sess *model.Session, target string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endLocked(ctx, sess, c.stateLocked(sess.Room), target)
}

// endLocked ends target's call; a teaching point not called on is left as it is (nobody is
// told). Caller holds c.mu.
func (c *controller) endLocked(ctx context.Context, sess *model.Session, st *roomState, target string) error {
	was := st.calledOn[target]
	delete(st.calledOn, target)
	p, _, _, err := c.participant(ctx, sess, target)
	if err != nil {
		return err
	}
	if !was && p.GetAttributes()[AttrCalledOn] == "" && hasMic(p) == (st.mode == ModeFree) {
		return nil
	}
	_, err = c.s.rooms.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: sess.Room, Identity: target,
		Permission: Permission(RoleTeachingPoint, st.mode == ModeFree), Attributes: map[string]string{AttrCalledOn: ""}})
	return err
}

// setMode switches between lecture and free discussion, updating every teaching point's
// microphone permission and the room metadata ({"sanke.mode": ..., "sanke.session": ...}).
func (c *controller) setMode(ctx context.Context, sess *model.Session, mode string) error {
	if mode != ModeFree && mode != ModeLecture {
		return fmt.Errorf("mode must be %q or %q", ModeLecture, ModeFree)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, err := c.s.rooms.ListParticipants(ctx, sess.Room)
	if err != nil {
		return fmt.Errorf("%w: the room is not open", errNotInRoom)
	}
	st := c.stateLocked(sess.Room)
	if st.mode == mode {
		return nil // the class is in that mode: nothing to tell anyone
	}
	st.mode = mode
	idx := c.s.Index()
	for _, p := range ps {
		if _, role := identify(idx, sess, p); role != RoleTeachingPoint {
			continue
		}
		mic := mode == ModeFree || st.calledOn[p.GetIdentity()]
		if _, err := c.s.rooms.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: sess.Room, Identity: p.GetIdentity(),
			Permission: Permission(RoleTeachingPoint, mic)}); err != nil {
			c.s.logger.Warn("changing a teaching point's microphone", "identity", p.GetIdentity(), "err", err)
		}
	}
	md, _ := json.Marshal(map[string]string{"sanke.mode": mode, "sanke.session": sess.ID})
	_, err = c.s.rooms.UpdateRoomMetadata(ctx, sess.Room, string(md))
	return err
}

// state returns the control state of a session's room.
func (c *controller) state(sess *model.Session) ClassState {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := ClassState{Session: sess.ID, Room: sess.Room, Mode: ModeLecture, CalledOn: []string{}, Hands: []string{}}
	if st := c.rooms[sess.Room]; st != nil {
		cs.Mode = st.mode
		for id := range st.calledOn {
			cs.CalledOn = append(cs.CalledOn, id)
		}
		for id := range st.hands {
			cs.Hands = append(cs.Hands, id)
		}
	}
	sort.Strings(cs.CalledOn)
	sort.Strings(cs.Hands)
	return cs
}

// hasMic reports whether a participant may publish its microphone.
func hasMic(p *livekit.ParticipantInfo) bool {
	return slices.Contains(p.GetPermission().GetCanPublishSources(), livekit.TrackSource_MICROPHONE)
}
