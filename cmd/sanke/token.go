package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/config"
)

// grantNames lists the values --grants accepts, in help order, with what each grants.
func grantNames() []struct{ name, help string } {
	return []struct{ name, help string }{
		{"join", "join the room given by --room"},
		{"publish", "publish audio and video"},
		{"subscribe", "subscribe to others' tracks"},
		{"publish-data", "send data messages"},
		{"hidden", "invisible to other participants (observers, recorders)"},
		{"admin", "moderate the room given by --room (Room API)"},
		{"list", "list rooms (Room API)"},
		{"create", "create and delete rooms (Room API)"},
		{"record", "record rooms"},
		{"update-metadata", "update one's own name, metadata and attributes"},
	}
}

// defaultGrants applies when --grants is not given: a normal classroom participant.
const defaultGrants = "join,publish,subscribe,publish-data"

// tokenSources lists the values --sources accepts.
func tokenSources() map[string]livekit.TrackSource {
	return map[string]livekit.TrackSource{
		"camera":             livekit.TrackSource_CAMERA,
		"microphone":         livekit.TrackSource_MICROPHONE,
		"screen_share":       livekit.TrackSource_SCREEN_SHARE,
		"screen_share_audio": livekit.TrackSource_SCREEN_SHARE_AUDIO,
	}
}

// token runs "sanke token": print a LiveKit-format access token signed with an API key.
func (a *app) token(args []string) int {
	fs := flag.NewFlagSet("sanke token", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	room := fs.String("room", "", "room name (required for the join and admin grants)")
	identity := fs.String("identity", "", "participant identity, unique in the room (required for join)")
	name := fs.String("name", "", "participant display name")
	metadata := fs.String("metadata", "", "participant metadata, visible to everyone in the room")
	grants := fs.String("grants", defaultGrants, "comma-separated grants, see below")
	sources := fs.String("sources", "", "comma-separated sources the participant may publish, from "+
		"camera,microphone,screen_share,screen_share_audio (default: all)")
	ttl := fs.Duration("ttl", 6*time.Hour, "how long the token stays valid")
	apiKey := fs.String("api-key", "", "API key to sign with (chooses among configured keys when --api-secret is absent)")
	apiSecret := fs.String("api-secret", "", "secret of --api-key")
	fs.Bool("dev", false, "sign with the development key devkey/secret (unless SANKE_KEYS or the config give keys)")
	configFile := fs.String("config", "", "read keys from this config file (env "+config.EnvConfigFile+")")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, `Usage: sanke token --room R --identity I [flags]

Prints an access token (a LiveKit JWT) for the given participant. The signing key comes from
--api-key/--api-secret, or else from the server configuration: --dev, --config FILE,
SANKE_CONFIG or SANKE_KEYS (as for "sanke serve").

Example (a teacher):
  sanke token --dev --room math-101 --identity teacher \
    --grants join,publish,subscribe,publish-data,admin,update-metadata

Grants (default `+defaultGrants+`):
`)
		for _, g := range grantNames() {
			fmt.Fprintf(out, "  %-16s %s\n", g.name, g.help)
		}
		fmt.Fprint(out, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageError := func(format string, args ...any) int {
		fmt.Fprintf(a.stderr, "sanke token: "+format+"\n", args...)
		return exitUsage
	}

	grant, err := videoGrant(*grants, *sources, *room)
	if err != nil {
		return usageError("%v", err)
	}
	if (grant.RoomJoin || grant.RoomAdmin) && *room == "" {
		return usageError("--room is required for the join and admin grants")
	}
	if grant.RoomJoin && *identity == "" {
		return usageError("--identity is required for the join grant")
	}
	if *ttl <= 0 {
		return usageError("--ttl must be positive, got %s", *ttl)
	}
	if *apiSecret != "" && *apiKey == "" {
		return usageError("--api-secret needs --api-key")
	}

	key, secret := *apiKey, *apiSecret
	if secret == "" {
		cfg, err := config.Load(config.LoadOptions{File: *configFile, Env: a.env, Flags: fs})
		if err != nil {
			fmt.Fprintf(a.stderr, "sanke token: %v\n", err)
			return exitError
		}
		key, secret, err = pickKey(cfg.Keys, key)
		if err != nil {
			fmt.Fprintf(a.stderr, "sanke token: %v\n", err)
			return exitError
		}
	}

	at := auth.NewAccessToken(key, secret).
		SetIdentity(*identity).
		SetName(*name).
		SetMetadata(*metadata).
		SetVideoGrant(grant).
		SetValidFor(*ttl)
	jwt, err := at.ToJWT()
	if err != nil {
		fmt.Fprintf(a.stderr, "sanke token: %v\n", err)
		return exitError
	}
	fmt.Fprintln(a.stdout, jwt)
	return exitOK
}

// videoGrant builds the grant from the --grants and --sources lists. Publish, subscribe and
// publish-data are always set explicitly because LiveKit treats them as granted when absent.
func videoGrant(grants, sources, room string) (*auth.VideoGrant, error) {
	known := make(map[string]bool)
	for _, g := range grantNames() {
		known[g.name] = true
	}
	set := make(map[string]bool)
	for g := range strings.SplitSeq(grants, ",") {
		g = strings.ToLower(strings.TrimSpace(g))
		if g == "" {
			continue
		}
		if !known[g] {
			names := make([]string, 0, len(known))
			for _, n := range grantNames() {
				names = append(names, n.name)
			}
			return nil, fmt.Errorf("--grants: unknown grant %q (valid: %s)", g, strings.Join(names, ","))
		}
		set[g] = true
	}
	if len(set) == 0 {
		return nil, errors.New("--grants: no grants given")
	}

	grant := &auth.VideoGrant{
		Room:       room,
		RoomJoin:   set["join"],
		Hidden:     set["hidden"],
		RoomAdmin:  set["admin"],
		RoomList:   set["list"],
		RoomCreate: set["create"],
		RoomRecord: set["record"],
	}
	grant.SetCanPublish(set["publish"])
	grant.SetCanSubscribe(set["subscribe"])
	grant.SetCanPublishData(set["publish-data"])
	if set["update-metadata"] {
		grant.SetCanUpdateOwnMetadata(true)
	}

	if sources != "" {
		if !set["publish"] {
			return nil, errors.New("--sources needs the publish grant")
		}
		valid := tokenSources()
		var list []livekit.TrackSource
		for s := range strings.SplitSeq(sources, ",") {
			s = strings.ToLower(strings.TrimSpace(s))
			if s == "" {
				continue
			}
			src, ok := valid[s]
			if !ok {
				return nil, fmt.Errorf("--sources: unknown source %q (valid: %s)",
					s, strings.Join(slices.Sorted(maps.Keys(valid)), ","))
			}
			if !slices.Contains(list, src) {
				list = append(list, src)
			}
		}
		if len(list) == 0 {
			return nil, errors.New("--sources: no sources given")
		}
		grant.SetCanPublishSources(list)
	}
	return grant, nil
}

// pickKey chooses the signing key among the configured ones: the one named want, or the only
// one when want is empty.
func pickKey(keys map[string]string, want string) (key, secret string, err error) {
	names := slices.Sorted(maps.Keys(keys))
	switch {
	case want != "":
		secret, ok := keys[want]
		if !ok {
			return "", "", fmt.Errorf("API key %q is not configured (configured: %s); "+
				"pass its secret with --api-secret", want, listOrNone(names))
		}
		return want, secret, nil
	case len(keys) == 1:
		return names[0], keys[names[0]], nil
	case len(keys) == 0:
		return "", "", errors.New("no API key: pass --api-key and --api-secret, --dev, " +
			"--config FILE, or set SANKE_KEYS")
	default:
		return "", "", fmt.Errorf("several API keys are configured (%s); choose one with --api-key",
			strings.Join(names, ", "))
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
