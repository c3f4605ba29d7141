// Package classroom runs "three classrooms" (三个课堂) on Sanke: the dataset of regions,
// schools, classrooms, pairings and the timetable (package model); roles mapped to LiveKit
// grants, classroom sign-in and room tokens; hand raising and calling on as server-side
// state; the statistics of every class session (connections, video delivered, quality)
// kept durably in SQLite (package store), turned into session records and coverage
// aggregates (package coverage), and pushed to the education platform through a durable
// outbox (package outbox). See api.go for the REST API.
//
// The Service observes the room manager (it is a room.Observer) and samples its per-
// subscription statistics periodically. Times are taken from the Service's Clock when
// events arrive, so that a simulated clock can drive a whole term in a test.
package classroom

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"golang.org/x/crypto/bcrypt"

	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/classroom/outbox"
	"github.com/sanke-edu/sanke/classroom/store"
	"github.com/sanke-edu/sanke/sfu/room"
)

// Clock tells the time. The default is the system clock.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

// Now returns the system time.
func (systemClock) Now() time.Time { return time.Now() }

// Rooms is what the Service needs from the room layer (room.Manager implements it).
type Rooms interface {
	UpdateParticipant(ctx context.Context, req *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error)
	GetParticipant(ctx context.Context, room, identity string) (*livekit.ParticipantInfo, error)
	ListParticipants(ctx context.Context, room string) ([]*livekit.ParticipantInfo, error)
	UpdateRoomMetadata(ctx context.Context, room, metadata string) (*livekit.Room, error)
	CreateRoom(ctx context.Context, req *livekit.CreateRoomRequest) (*livekit.Room, error)
	RemoveParticipant(ctx context.Context, room, identity string) error
	Stats(roomName string) ([]room.ParticipantStats, error)
	RoomNames() []string
}

// Config configures the Service.
type Config struct {
	// DBPath is the SQLite database file.
	DBPath string
	// Datasets are files or directories (YAML/JSON/CSV) merged into the dataset at start.
	Datasets []string
	// Location is the time zone of timetables and periods (Asia/Shanghai).
	Location *time.Location
	// APIKey and APISecret sign room and sign-in tokens; Keys verifies tokens.
	APIKey, APISecret string
	Keys              auth.KeyProvider
	// AdminKey, when set, is accepted as "Authorization: Bearer <AdminKey>" with full rights.
	AdminKey string
	// PublicURL is the websocket URL returned with room tokens (optional).
	PublicURL string
	// ValidShare is the share of the schedule a receiving classroom must be connected with
	// video delivered for its session to be valid.
	ValidShare float64
	// SampleInterval is how often room statistics are sampled and due sessions finalized.
	SampleInterval time.Duration
	// FinalizeDelay is how long after a session's scheduled end its record is made.
	FinalizeDelay time.Duration
	// EarlyJoin is how long before a session's start room tokens are issued.
	EarlyJoin time.Duration
	// MinTokenTTL is the shortest validity of a room token.
	MinTokenTTL time.Duration
	// LoginTTL is the validity of a sign-in token.
	LoginTTL time.Duration
	// PasswordCost is the bcrypt cost of stored passwords (0: bcrypt.DefaultCost).
	PasswordCost int
	// LoginPerMinute is the sign-in attempts one client address may make in a burst and per
	// minute after it (0: 30).
	LoginPerMinute int
	// ControlPerMinute is the class control requests (hand, call-on, mode) one room
	// participant may make per minute, after a burst of controlBurst (0: 30).
	ControlPerMinute int
	// TokenPerMinute is the room token, view token and /me requests one account may make in
	// a burst and per minute after it (0: 60).
	TokenPerMinute int
	// LoginConcurrency bounds the password checks running at once (0: GOMAXPROCS).
	LoginConcurrency int
	// TrustProxyHeaders takes client addresses from X-Forwarded-For / X-Real-IP (only behind
	// a reverse proxy that sets them; see signaling.ClientAddress).
	TrustProxyHeaders bool
	// RoutineMinPerWeek and RoutineWeeks define routine use (常态化).
	RoutineMinPerWeek, RoutineWeeks int
	// Platform is where records and daily reports are pushed.
	Platform outbox.Config
	// DailyReportHour is the local hour after which yesterday's report is queued; -1: never.
	DailyReportHour int
	Logger          *slog.Logger
}

// Service is the three-classrooms service.
type Service struct {
	cfg    Config
	loc    *time.Location
	logger *slog.Logger
	store  *store.Store
	outbox *outbox.Outbox
	rooms  Rooms

	clock       Clock
	manualTicks bool

	mu     sync.RWMutex
	idx    *model.Index
	epochs map[string]int64 // account -> revocation epoch (see revoke.go); replaced whole

	writeMu sync.Mutex // serializes dataset changes

	events *eventQueue
	ctl    *controller
	col    *collector
	logins *loginGuard
	limits *callerLimits

	signInKey string        // signs and verifies Sanke's sign-in tokens (see signInIssuer)
	dummyHash string        // checked for accounts that do not exist, at the configured cost
	refusals  *refusalAudit // bounds the audit entries refusals cause
	importing chan struct{} // one import read and checked at a time (bounds their memory)

	tickMu  sync.Mutex // one Tick at a time
	started atomic.Bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New opens the database, loads the stored dataset and merges the configured dataset files
// into it (all or nothing: a bad file stops the start with its row and field errors).
func New(cfg Config, rooms Rooms) (*Service, error) {
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ValidShare <= 0 || cfg.ValidShare > 1 {
		return nil, fmt.Errorf("classroom: valid_share must be in (0, 1], got %g", cfg.ValidShare)
	}
	if cfg.SampleInterval <= 0 || cfg.FinalizeDelay < 0 {
		return nil, errors.New("classroom: sample_interval must be positive and finalize_delay not negative")
	}
	if cfg.APIKey == "" || cfg.APISecret == "" || cfg.Keys == nil {
		return nil, errors.New("classroom: an API key is needed to sign tokens")
	}
	if cfg.Keys.GetSecret(signInIssuer) != "" {
		return nil, fmt.Errorf("classroom: the API key name %q is reserved for sign-in tokens", signInIssuer)
	}
	if cfg.MinTokenTTL <= 0 {
		cfg.MinTokenTTL = time.Minute
	}
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = 12 * time.Hour
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	if cfg.LoginPerMinute < 0 || cfg.LoginConcurrency < 0 || cfg.ControlPerMinute < 0 || cfg.TokenPerMinute < 0 {
		return nil, errors.New("classroom: login_per_minute, control_per_minute and token_per_minute must not be negative")
	}
	if cfg.PasswordCost < bcrypt.MinCost || cfg.PasswordCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("classroom: password_cost must be %d-%d, got %d", bcrypt.MinCost, bcrypt.MaxCost, cfg.PasswordCost)
	}
	st, err := store.Open(cfg.DBPath)
	if err != nil {
		return nil, err
	}
	cfg.Platform.Logger = cfg.Logger
	ob, err := outbox.New(st.DB(), cfg.Platform)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	s := &Service{cfg: cfg, loc: cfg.Location, logger: cfg.Logger, store: st, outbox: ob, rooms: rooms, clock: systemClock{}}
	s.logins = newLoginGuard(cfg.LoginPerMinute, cfg.LoginConcurrency)
	s.limits = newCallerLimits(cfg.ControlPerMinute, cfg.TokenPerMinute)
	s.signInKey = signInSecret(cfg.APIKey, cfg.APISecret)
	dummy, err := bcrypt.GenerateFromPassword([]byte(s.signInKey), cfg.PasswordCost)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	s.dummyHash = string(dummy)
	s.refusals = newRefusalAudit()
	s.importing = make(chan struct{}, 1)
	s.events = newEventQueue()
	s.ctl = newController(s)
	s.col = newCollector(s)
	if err := s.load(context.Background()); err != nil {
		_ = st.Close()
		return nil, err
	}
	return s, nil
}

// load reads the stored dataset and merges the configured files.
func (s *Service) load(ctx context.Context) error {
	d, err := s.store.LoadDataset(ctx)
	if err != nil {
		return err
	}
	if s.epochs, err = s.store.AccountEpochs(ctx); err != nil {
		return err
	}
	if errs := model.Validate(d, s.loc); len(errs) > 0 {
		// A stored dataset was valid when saved; this only happens if the rules changed.
		s.logger.Warn("stored dataset no longer validates", "problems", len(errs), "first", errs[0].Error())
	}
	s.idx = model.NewIndex(d, s.loc)
	for _, path := range s.cfg.Datasets {
		in, errs := model.ReadPath(path)
		if len(errs) > 0 {
			return fmt.Errorf("classroom: dataset %s:\n%w", path, errs.Err())
		}
		if _, err := s.Import(ctx, in, ImportOptions{Actor: "config:" + path}); err != nil {
			return fmt.Errorf("classroom: dataset %s:\n%w", path, err)
		}
	}
	c := s.idx.Data.Counts()
	s.logger.Info("classroom dataset loaded", "regions", c[model.KindRegions], "schools", c[model.KindSchools],
		"classrooms", c[model.KindClassrooms], "sessions", c[model.KindSessions], "accounts", c[model.KindAccounts])
	return nil
}

// SetClock replaces the clock (for simulations and tests). It also stops automatic sampling:
// the caller drives it with Tick. Call it before Start.
func (s *Service) SetClock(c Clock) {
	s.clock = c
	s.manualTicks = true
}

// Now returns the Service's time.
func (s *Service) Now() time.Time { return s.clock.Now() }

// Index returns the current dataset index (immutable; replaced on every change).
func (s *Service) Index() *model.Index {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx
}

// Outbox returns the platform outbox (for metrics).
func (s *Service) Outbox() *outbox.Outbox { return s.outbox }

// Store returns the database (for tests and tools).
func (s *Service) Store() *store.Store { return s.store }

// Start recovers connections left open by a crash and starts the background work: event
// processing, sampling and finalization every SampleInterval, and the outbox dispatcher.
func (s *Service) Start(ctx context.Context) error {
	n, err := s.store.RecoverOpen(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.logger.Info("closed connections left open by the previous run at their last heartbeat", "connections", n)
	}
	if err := s.col.loadFinalized(ctx); err != nil {
		return err
	}
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.started.Store(true)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.processEvents(ctx) }()
	go func() { defer s.wg.Done(); s.outbox.Run(ctx) }()
	if !s.manualTicks {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.Tick(ctx) // finalize what ended while Sanke was down, at once
			t := time.NewTicker(s.cfg.SampleInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.Tick(ctx)
				}
			}
		}()
	}
	return nil
}

// Close processes the events already received, stops the background work and closes the
// database. Call it after the rooms have been drained.
func (s *Service) Close() error {
	if s.started.Load() {
		s.Flush()
		s.started.Store(false)
		s.events.close()
		s.cancel()
		s.wg.Wait()
	}
	return s.store.Close()
}

// OnRoomEvent implements room.Observer: the event is stamped with the Service's clock and
// queued (never blocks, never drops).
func (s *Service) OnRoomEvent(e room.Event) {
	e.Time = s.clock.Now()
	s.events.push(e)
}

// processEvents handles queued room events in order.
func (s *Service) processEvents(ctx context.Context) {
	for {
		e, ok := s.events.pop()
		if !ok {
			return
		}
		if e.Type == room.EventParticipantJoined && e.Room != nil {
			s.removeRevoked(ctx, e.Room.GetName(), e.Participant) // admitted just before a revocation
		}
		s.col.handle(ctx, e)
		s.ctl.handle(ctx, e)
		s.events.done()
	}
}

// Flush waits until every room event received so far has been processed (after Start).
func (s *Service) Flush() {
	if s.started.Load() {
		s.events.wait()
	}
}

// Tick samples the rooms of running sessions, finalizes sessions that are due, and queues
// daily reports. It runs every SampleInterval (unless a clock was set with SetClock).
func (s *Service) Tick(ctx context.Context) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	s.Flush()
	now := s.clock.Now()
	s.col.sample(ctx, now)
	s.col.finalizeDue(ctx, now)
	if err := s.store.PruneSignIns(ctx, now); err != nil {
		s.logger.Warn("forgetting expired sign-ins", "err", err)
	}
	s.queueDailyReports(ctx, now)
}

// ImportOptions says how an import is applied.
type ImportOptions struct {
	// Replace makes the imported records the whole dataset; otherwise they are merged into
	// it (entities upserted by ID).
	Replace bool
	// DryRun validates without saving.
	DryRun bool
	// Actor names who imports, for the audit log.
	Actor string
}

// Import merges records read from files into the dataset (or replaces it) after validating
// the result. Either everything is applied or nothing: the returned error is a model.Errors
// listing every problem by file, row and field. It returns the number of entities imported
// per table.
func (s *Service) Import(ctx context.Context, in model.Input, opts ImportOptions) (map[model.Kind]int, error) {
	patch, errs := model.Build(in, s.loc)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	counts := patch.Counts()
	err := s.apply(ctx, opts.Actor, "dataset.import", opts.DryRun, func(d *model.Dataset) (*model.Dataset, error) {
		// An account given without a password keeps the one it has.
		for i := range patch.Accounts {
			a := &patch.Accounts[i]
			if a.Password == "" && a.PasswordHash == "" {
				if old := s.Index().Account(a.ID); old != nil {
					a.PasswordHash = old.PasswordHash
				}
			}
		}
		if opts.Replace {
			return patch, nil
		}
		d.Merge(patch)
		return d, nil
	}, counts)
	return counts, err
}

// apply changes a copy of the dataset with change, validates, hashes new passwords, saves it
// in one transaction and makes it current.
func (s *Service) apply(ctx context.Context, actor, action string, dryRun bool, change func(*model.Dataset) (*model.Dataset, error), counts map[model.Kind]int) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	old := s.Index()
	next, err := change(old.Data.Clone())
	if err != nil {
		return err
	}
	if errs := model.Validate(next, s.loc); len(errs) > 0 {
		return errs.Err()
	}
	if dryRun {
		return nil
	}
	if err := hashPasswords(next.Accounts, old, s.cfg.PasswordCost); err != nil {
		return err
	}
	revoked := revokedBy(old.Data, next)
	epochs, saveEpochs := s.newEpochs(ctx, revoked, s.clock.Now().UnixMilli())
	if err := s.store.SaveDataset(ctx, next, saveEpochs); err != nil {
		return fmt.Errorf("saving the dataset: %w", err)
	}
	idx := model.NewIndex(next, s.loc)
	s.mu.Lock()
	s.idx, s.epochs = idx, epochs
	s.mu.Unlock()
	detail := ""
	for _, k := range model.Kinds() {
		if counts[k] > 0 {
			detail += fmt.Sprintf("%s=%d ", k, counts[k])
		}
	}
	s.audit(ctx, actor, action, "", "", strings.TrimSpace(detail))
	if len(revoked) > 0 {
		s.audit(ctx, actor, "account.tokens_revoked", "", "", "accounts="+quoteTrunc(strings.Join(revoked, ",")))
		s.endRevoked(ctx)
	}
	return nil
}

// hashPasswords replaces plain-text passwords by bcrypt hashes, using every core. A password
// that is the account's current one (in old) keeps its hash: importing the same account list
// again, or starting with the same dataset file, changes no password and so revokes no token
// (see revoke.go).
func hashPasswords(accounts []model.Account, old *model.Index, cost int) error {
	var todo []int
	for i := range accounts {
		if accounts[i].Password != "" {
			todo = append(todo, i)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(todo))
	sem := make(chan struct{}, runtime.NumCPU())
	for j, i := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if prev := old.Account(accounts[i].ID); prev != nil && prev.PasswordHash != "" &&
				bcrypt.CompareHashAndPassword([]byte(prev.PasswordHash), []byte(accounts[i].Password)) == nil {
				accounts[i].PasswordHash, accounts[i].Password = prev.PasswordHash, ""
				return
			}
			h, err := bcrypt.GenerateFromPassword([]byte(accounts[i].Password), cost)
			if err != nil {
				errs[j] = fmt.Errorf("account %s: %w", accounts[i].ID, err)
				return
			}
			accounts[i].PasswordHash, accounts[i].Password = string(h), ""
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// audit writes an audit log entry (errors are logged: auditing never fails a request).
func (s *Service) audit(ctx context.Context, actor, action, session, roomName, detail string) {
	e := store.AuditEntry{At: s.clock.Now(), Actor: actor, Action: action, Session: session, Room: roomName, Detail: detail}
	if err := s.store.Audit(context.WithoutCancel(ctx), e); err != nil {
		s.logger.Error("audit log", "err", err, "action", action)
	}
	s.logger.Info("audit", "actor", actor, "action", action, "session", session, "room", roomName, "detail", detail)
}

// checkAdminKey compares a bearer value with the admin key in constant time.
func (s *Service) checkAdminKey(v string) bool {
	return s.cfg.AdminKey != "" && subtle.ConstantTimeCompare([]byte(v), []byte(s.cfg.AdminKey)) == 1
}

// eventQueue is an unbounded FIFO of room events with a way to wait for it to drain.
type eventQueue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	items    []room.Event
	pushed   uint64
	finished uint64
	closed   bool
}

func newEventQueue() *eventQueue {
	q := &eventQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *eventQueue) push(e room.Event) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, e)
		q.pushed++
	}
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *eventQueue) pop() (room.Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return room.Event{}, false
	}
	e := q.items[0]
	q.items[0] = room.Event{}
	q.items = q.items[1:]
	return e, true
}

func (q *eventQueue) done() {
	q.mu.Lock()
	q.finished++
	q.mu.Unlock()
	q.cond.Broadcast()
}

// wait blocks until the events pushed before the call are processed (or the queue closed).
func (q *eventQueue) wait() {
	q.mu.Lock()
	defer q.mu.Unlock()
	target := q.pushed
	for q.finished < target && !q.closed {
		q.cond.Wait()
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
