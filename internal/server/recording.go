package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/recorder"
	"github.com/sanke-edu/sanke/recorder/storage"
)

// recorderCloseTimeout bounds how long shutdown waits for recordings to be stored (a store
// that does not answer must not hold the shutdown); what is not stored by then is completed
// from the spool at the next start.
const recorderCloseTimeout = 10 * time.Second

// setupRecording builds the recorder from the configuration, registers its HTTP routes and
// makes it observe the rooms. It does nothing when recording is disabled.
func (s *Server) setupRecording() error {
	rc := s.cfg.Recording
	if !rc.Enabled {
		return nil
	}
	var store storage.Store
	switch rc.Storage.Type {
	case "", "local":
		dir := rc.Storage.LocalDir
		if dir == "" {
			dir = filepath.Join(s.cfg.DataDir, "recordings")
		}
		l, err := storage.NewLocal(dir)
		if err != nil {
			return fmt.Errorf("recording store: %w", err)
		}
		store = l
	case "s3":
		// The recorder checks the bucket (creating it if missing) in the background at
		// start: a store that does not answer delays nothing.
		s3, err := storage.NewS3(storage.S3Config{
			Endpoint: rc.Storage.S3.Endpoint, Region: rc.Storage.S3.Region, Bucket: rc.Storage.S3.Bucket,
			PathStyle: rc.Storage.S3.PathStyle, AccessKey: rc.Storage.S3.AccessKey, SecretKey: rc.Storage.S3.SecretKey,
			Timeout: rc.Storage.S3.Timeout,
		})
		if err != nil {
			return fmt.Errorf("recording store: %w", err)
		}
		store = s3
	default:
		return fmt.Errorf("recording.storage.type must be local or s3, not %q", rc.Storage.Type)
	}
	spool := rc.SpoolDir
	if spool == "" {
		spool = filepath.Join(s.cfg.DataDir, "recording-spool")
	}
	names := make([]string, 0, len(s.cfg.Keys))
	for k := range s.cfg.Keys {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return errors.New("recording needs an API key")
	}
	host := "127.0.0.1"
	if b := s.cfg.BindAddresses; len(b) == 1 && b[0] != "" && b[0] != "0.0.0.0" && b[0] != "::" {
		host = b[0]
	}
	rec, err := recorder.New(recorder.Options{
		URL:    "ws://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.Port)),
		APIKey: names[0], APISecret: s.cfg.Keys[names[0]],
		Keys:          auth.NewFileBasedKeyProviderFromMap(s.cfg.Keys),
		GrantsCheck:   s.checkGrants,
		Rooms:         s.rooms,
		Store:         store,
		Prefix:        rc.Storage.Prefix,
		SpoolDir:      spool,
		SpoolLimit:    int64(rc.SpoolLimitMB) << 20,
		PartSize:      int64(rc.PartSizeMB) << 20,
		FlushInterval: rc.FlushInterval,
		LinkExpiry:    rc.LinkExpiry,
		AutoRooms:     rc.AutoRooms,
		AutoMetadata:  rc.AutoMetadata,
		Logger:        s.logger,
	})
	if err != nil {
		return err
	}
	s.rooms.AddObserver(rec)
	rec.Register(s.mux)
	s.recorder = rec
	return nil
}

// Recorder returns the recorder, nil when recording is disabled.
func (s *Server) Recorder() *recorder.Recorder { return s.recorder }

// startRecording starts the recorder once the server listens (it joins rooms through it).
func (s *Server) startRecording() {
	if s.recorder != nil {
		s.recorder.Start()
	}
}

// stopRecording stores the recordings in progress (rooms were drained: they are ending).
func (s *Server) stopRecording() {
	if s.recorder == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recorderCloseTimeout)
	defer cancel()
	if err := s.recorder.Close(ctx); err != nil {
		s.logger.Warn("recorder shutdown", "err", err)
	}
}
