// Command filepublisher joins a room with the LiveKit Go SDK and publishes the pre-encoded test
// media of package testmedia: the three VP8 simulcast layers (q 320x180, h 640x360, f 1280x720)
// as one camera track and the Opus clip as a microphone, played from their files in real time
// and looped. The browser tests use it where a precondition must not depend on an encoder
// getting CPU: the layers' bitrates are those of the files, whatever the machine's load.
//
//	filepublisher -url ws://127.0.0.1:7880 -token <join token>
//
// Once both tracks are published it prints one JSON line on stdout: the track sids and, per
// layer, its size and its bitrate measured over the whole file (bits per second). It leaves
// the room and exits on SIGINT or SIGTERM, or when its standard input closes (its parent
// went away).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// layer is what the published line says of one simulcast layer.
type layer struct {
	RID     string `json:"rid"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Bitrate int    `json:"bitrate"`
}

// published is the line printed once the tracks are published.
type published struct {
	Event  string  `json:"event"`
	Video  string  `json:"video"`
	Audio  string  `json:"audio"`
	Layers []layer `json:"layers"`
}

func main() {
	url := flag.String("url", "", "the server's websocket URL (ws://host:port)")
	token := flag.String("token", "", "a join token for the room")
	flag.Parse()
	if *url == "" || *token == "" {
		fmt.Fprintln(os.Stderr, "usage: filepublisher -url ws://host:port -token TOKEN")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *token); err != nil {
		slog.Error("filepublisher", "err", err)
		os.Exit(1)
	}
}

// run publishes until ctx is done or stdin closes.
func run(ctx context.Context, url, token string) error {
	root, err := testmedia.CacheRoot()
	if err != nil {
		return err
	}
	genCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	files, _, err := testmedia.Ensure(genCtx, root)
	cancel()
	if err != nil {
		return fmt.Errorf("test media: %w", err)
	}

	room := lksdk.NewRoom(nil)
	joinCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = room.JoinWithContextAndToken(joinCtx, url, token)
	cancel()
	if err != nil {
		return fmt.Errorf("join %s: %w", url, err)
	}
	defer room.Disconnect()

	video, err := testclient.PublishSimulcastVP8(room, files, nil)
	if err != nil {
		return err
	}
	audio, err := testclient.PublishOpus(room, files, nil)
	if err != nil {
		return err
	}
	out := published{Event: "published", Video: video.SID(), Audio: audio.SID()}
	for _, l := range files.VP8 {
		out.Layers = append(out.Layers, layer{RID: l.RID, Width: l.Width, Height: l.Height,
			Bitrate: int(float64(l.Bytes*8) / files.Duration.Seconds())})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return err
	}

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
	return errors.Join(video.Unpublish(), audio.Unpublish())
}
