package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom"
	"github.com/sanke-edu/sanke/classroom/outbox"
	"github.com/sanke-edu/sanke/internal/metrics"
	"github.com/sanke-edu/sanke/internal/webhook"
	"github.com/sanke-edu/sanke/recorder"
)

// webhookStopTimeout bounds how long shutdown waits for queued webhooks.
const webhookStopTimeout = 5 * time.Second

// extras are the services wired here: three classrooms (REST API under /api/v1/),
// LiveKit-format webhooks and Prometheus metrics (/metrics).
type extras struct {
	classroom *classroom.Service
	webhooks  *webhook.Notifier
	metrics   *metrics.Collector
}

// setupExtras builds the classroom service, the webhook notifier and the metrics collector
// from the configuration, registers their routes and makes them observe the rooms (and the
// recorder, when there is one).
func (s *Server) setupExtras() error {
	s.extras.metrics = metrics.New(s.rooms)
	s.mux.Handle("GET /metrics", metricsGuard(s.cfg.Metrics, metrics.Handler(s.extras.metrics)))

	keys := auth.NewFileBasedKeyProviderFromMap(s.cfg.Keys)
	names := make([]string, 0, len(s.cfg.Keys))
	for k := range s.cfg.Keys {
		names = append(names, k)
	}
	sort.Strings(names)

	if wc := s.cfg.Webhook; len(wc.URLs) > 0 {
		key := wc.APIKey
		if key == "" {
			if len(names) != 1 {
				return errors.New("webhook.api_key: several API keys are configured; say which one signs webhooks")
			}
			key = names[0]
		}
		if s.cfg.Keys[key] == "" {
			return fmt.Errorf("webhook.api_key: %q is not a configured key", key)
		}
		n, err := webhook.New(webhook.Config{URLs: wc.URLs, APIKey: key, APISecret: s.cfg.Keys[key], Logger: s.logger})
		if err != nil {
			return err
		}
		s.extras.webhooks = n
		s.rooms.AddObserver(n)
	}
	if s.recorder != nil {
		listeners := webhook.Recordings{s.extras.metrics}
		if s.extras.webhooks != nil {
			listeners = append(listeners, s.extras.webhooks)
		}
		s.recorder.AddObserver(recorder.ObserverFunc(func(e recorder.Event) { forwardRecording(listeners, e) }))
	}

	cc := s.cfg.Classroom
	if !cc.Enabled {
		return nil
	}
	loc, err := time.LoadLocation(cc.Timezone)
	if err != nil {
		return fmt.Errorf("classroom.timezone: %w", err)
	}
	key := cc.TokenKey
	if key == "" && len(names) > 0 {
		key = names[0]
	}
	if s.cfg.Keys[key] == "" {
		return fmt.Errorf("classroom.token_key: %q is not a configured key", key)
	}
	if cc.Platform.URL != "" && cc.Platform.Secret == "" {
		return errors.New("classroom.platform.secret: required to sign what is pushed to classroom.platform.url")
	}
	svc, err := classroom.New(classroom.Config{
		DBPath:            filepath.Join(s.cfg.DataDir, "classroom.db"),
		Datasets:          cc.Dataset,
		Location:          loc,
		APIKey:            key,
		APISecret:         s.cfg.Keys[key],
		Keys:              keys,
		AdminKey:          cc.AdminKey,
		PublicURL:         cc.PublicURL,
		ValidShare:        cc.ValidShare,
		SampleInterval:    cc.SampleInterval,
		FinalizeDelay:     cc.FinalizeDelay,
		EarlyJoin:         cc.EarlyJoin,
		LoginTTL:          cc.LoginTTL,
		PasswordCost:      cc.PasswordCost,
		LoginPerMinute:    cc.LoginPerMinute,
		ControlPerMinute:  cc.ControlPerMinute,
		TokenPerMinute:    cc.TokenPerMinute,
		TrustProxyHeaders: s.cfg.Signal.TrustProxyHeaders,
		RoutineMinPerWeek: cc.RoutineMinPerWeek,
		RoutineWeeks:      cc.RoutineWeeks,
		Platform: outbox.Config{URL: cc.Platform.URL, Secret: cc.Platform.Secret,
			RetryMin: cc.Platform.RetryMin, RetryMax: cc.Platform.RetryMax},
		DailyReportHour: cc.Platform.DailyReportHour,
		Logger:          s.logger.With("component", "classroom"),
	}, s.rooms)
	if err != nil {
		return err
	}
	s.extras.classroom = svc
	s.extras.metrics.SetBacklog(svc.Outbox())
	s.rooms.AddObserver(svc)
	s.rooms.SetJoinPolicy(svc) // a joining teaching point's microphone follows the class
	// More specific routes (the recorder's) take precedence over this prefix.
	s.mux.Handle("/api/v1/", svc.Handler())
	return nil
}

// forwardRecording turns recorder events into LiveKit egress events.
func forwardRecording(l webhook.RecordingListener, e recorder.Event) {
	info := &livekit.EgressInfo{EgressId: e.RecordingID, RoomName: e.Room, Error: e.Error}
	switch e.Type {
	case recorder.EventRecordingStarted:
		info.Status, info.StartedAt = livekit.EgressStatus_EGRESS_ACTIVE, e.Time.UnixNano()
		l.RecordingStarted(info)
	case recorder.EventRecordingFinished, recorder.EventRecordingRecovered:
		info.Status, info.EndedAt = livekit.EgressStatus_EGRESS_COMPLETE, e.Time.UnixNano()
		l.RecordingEnded(info)
	case recorder.EventRecordingFailed:
		info.Status, info.EndedAt = livekit.EgressStatus_EGRESS_FAILED, e.Time.UnixNano()
		l.RecordingEnded(info)
	}
}

// Classroom returns the classroom service, nil when it is disabled.
func (s *Server) Classroom() *classroom.Service { return s.extras.classroom }

// Recordings returns what the recorder should tell about recordings (webhooks and metrics);
// setupExtras already connects it to the recorder built from the configuration.
func (s *Server) Recordings() webhook.RecordingListener {
	l := webhook.Recordings{s.extras.metrics}
	if s.extras.webhooks != nil {
		l = append(l, s.extras.webhooks)
	}
	return l
}

// startExtras starts the classroom service's background work.
func (s *Server) startExtras(ctx context.Context) error {
	if s.extras.classroom != nil {
		return s.extras.classroom.Start(ctx)
	}
	return nil
}

// stopExtras records the leaves of the drained rooms, closes the classroom database and
// sends the queued webhooks.
func (s *Server) stopExtras() {
	if s.extras.classroom != nil {
		if err := s.extras.classroom.Close(); err != nil {
			s.logger.Warn("classroom shutdown", "err", err)
		}
	}
	if n := s.extras.webhooks; n != nil {
		done := make(chan struct{})
		go func() { n.Stop(false); close(done) }()
		select {
		case <-done:
		case <-time.After(webhookStopTimeout):
			n.Stop(true)
		}
	}
}

// checkGrants refuses, for the Room API and the recorder's routes, the tokens the classroom
// service has revoked (an account whose password changed or that was disabled). The service
// is made in New, before anything is served, so reading it here needs no lock.
func (s *Server) checkGrants(g *auth.ClaimGrants) error {
	if s.extras.classroom == nil {
		return nil
	}
	return s.extras.classroom.CheckGrants(g)
}
