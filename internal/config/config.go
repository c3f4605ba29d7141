// Package config defines Sanke's configuration: its structure, defaults, loading from a YAML
// file overridden by environment variables and flags, and validation.
package config

import "time"

// Development-mode credentials. They are public knowledge, so Validate refuses them outside dev
// mode.
const (
	// DevAPIKey is the API key used in dev mode when no keys are configured.
	DevAPIKey = "devkey"
	// DevAPISecret is the secret of DevAPIKey.
	DevAPISecret = "secret"
)

// MinSecretLength is the shortest API secret accepted outside dev mode. 32 characters of
// random base64 carry enough entropy for the HMAC-SHA256 that signs LiveKit tokens.
const MinSecretLength = 32

// Config is the whole server configuration. The YAML keys are documented in configs/sanke.yaml.
type Config struct {
	// Dev enables development mode: by default HTTP/websocket on 127.0.0.1 only (an explicit
	// bind address is honored, and the server warns at start when it is not loopback), API key
	// "devkey" / secret "secret", loopback ICE candidates, no Redis, data under ./data, pprof and
	// the /dev/ endpoints (answered to loopback clients only, whatever the bind address).
	Dev bool `koanf:"dev"`
	// BindAddresses are the IP addresses the HTTP/websocket server listens on.
	BindAddresses []string `koanf:"bind_addresses"`
	// Port is the HTTP/websocket port (signaling, Room API, web client).
	Port int `koanf:"port"`
	// Keys maps API keys to their secrets.
	Keys map[string]string `koanf:"keys"`
	// DataDir is where local state (recordings, databases) lives.
	DataDir string `koanf:"data_dir"`

	RTC    RTCConfig    `koanf:"rtc"`
	Room   RoomConfig   `koanf:"room"`
	Signal SignalConfig `koanf:"signal"`
	Log    LogConfig    `koanf:"log"`
	Redis  RedisConfig  `koanf:"redis"`
	// Recording configures the server-side recorder (package recorder).
	Recording RecordingConfig `koanf:"recording"`
	// Classroom configures three-classrooms sessions and statistics (package classroom).
	Classroom ClassroomConfig `koanf:"classroom"`
	// Webhook configures LiveKit-format webhooks (package webhook).
	Webhook WebhookConfig `koanf:"webhook"`
	// TURN configures the embedded TURN relay (package turnserver).
	TURN TURNConfig `koanf:"turn"`
	// HTTP bounds the HTTP server's connections: timeouts, header size, connection caps.
	HTTP HTTPConfig `koanf:"http"`
	// Metrics says who may read /metrics.
	Metrics MetricsConfig `koanf:"metrics"`
	// Limit bounds what clients and Room API calls can make the server keep.
	Limit LimitConfig `koanf:"limit"`
}

// HTTPConfig bounds what one client can hold of the HTTP/websocket server. Websockets are
// bound by the signal settings once upgraded; these timeouts do not cut them.
type HTTPConfig struct {
	// ReadHeaderTimeout bounds the reading of a request's headers.
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	// ReadTimeout bounds the reading of a whole request, body included.
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// WriteTimeout bounds each write of a response: a client that takes no data for this long
	// is disconnected, however long the whole response takes.
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle for this long.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// MaxHeaderBytes caps the size of a request's line and headers.
	MaxHeaderBytes int `koanf:"max_header_bytes"`
	// MaxConns caps the connections open at once (websockets included).
	MaxConns int `koanf:"max_conns"`
	// MaxConnsPerIP caps the connections open at once from one client address (an IPv6
	// /64); loopback clients (a reverse proxy on this host, the recorder) are not counted
	// against it. 0: no per-address cap.
	MaxConnsPerIP int `koanf:"max_conns_per_ip"`
}

// MetricsConfig restricts /metrics. With neither key set anyone reaching the port reads it.
type MetricsConfig struct {
	// BearerToken, when set, must be presented as "Authorization: Bearer <token>".
	BearerToken string `koanf:"bearer_token"`
	// AllowedCIDRs, when not empty, are the only client networks answered.
	AllowedCIDRs []string `koanf:"allowed_cidrs"`
}

// TURNConfig configures the embedded TURN relay, for clients whose networks let neither
// UDP nor the ICE-TCP port through. Clients get its URLs and time-limited credentials in
// their join responses.
type TURNConfig struct {
	// Enabled starts the relay.
	Enabled bool `koanf:"enabled"`
	// Domain is the host name in the URLs handed to clients (a TURN/TLS certificate must
	// match it); empty: the host the client reached the server at.
	Domain string `koanf:"domain"`
	// UDPPort is the TURN/UDP port; 0 disables it.
	UDPPort int `koanf:"udp_port"`
	// TCPPort is the plain TURN/TCP port; 0 disables it.
	TCPPort int `koanf:"tcp_port"`
	// TLSPort is the TURN/TLS port (443 passes the strictest firewalls); 0 disables it.
	TLSPort int `koanf:"tls_port"`
	// CertFile and KeyFile are the PEM certificate (chain) and key of TURN/TLS.
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	// RelayPortRangeStart and RelayPortRangeEnd bound the relay sockets' UDP ports
	// (inclusive), for firewall rules; both 0: any port.
	RelayPortRangeStart int `koanf:"relay_port_range_start"`
	RelayPortRangeEnd   int `koanf:"relay_port_range_end"`
	// Secret signs the relay's credentials (TURN REST API HMAC); empty: a random one drawn
	// at start. Give every node of a cluster the same secret so that any node can verify.
	Secret string `koanf:"secret"`
	// CredentialTTL is how long a handed-out credential may start new allocations; what it
	// allocated lives only while its participant is in the session.
	CredentialTTL time.Duration `koanf:"credential_ttl"`
	// MaxAllocations bounds the relay's allocations in total, MaxAllocationsPerParticipant
	// those of one credential and MaxAllocationsPerAddress those from one client IP address.
	MaxAllocations               int `koanf:"max_allocations"`
	MaxAllocationsPerParticipant int `koanf:"max_allocations_per_participant"`
	MaxAllocationsPerAddress     int `koanf:"max_allocations_per_address"`
	// MaxConnections bounds the open TURN/TCP and TURN/TLS connections in total,
	// MaxConnectionsPerAddress those from one client IP address.
	MaxConnections           int `koanf:"max_connections"`
	MaxConnectionsPerAddress int `koanf:"max_connections_per_address"`
	// SetupTimeout is how long a TURN/TCP or TURN/TLS connection may take for its TLS
	// handshake and first allocation before it is closed.
	SetupTimeout time.Duration `koanf:"setup_timeout"`
}

// RTCConfig configures the WebRTC media plane.
type RTCConfig struct {
	// UDPPort is the single UDP port all peers share (ICE UDP mux).
	UDPPort int `koanf:"udp_port"`
	// TCPPort is the ICE-TCP port for clients whose firewalls block UDP; 0 disables it.
	TCPPort int `koanf:"tcp_port"`
	// TCPMaxConns caps the ICE-TCP connections open at once; further ones are closed as
	// soon as they are accepted.
	TCPMaxConns int `koanf:"tcp_max_conns"`
	// TCPMaxConnsPerIP caps those from one client address; the server's own media addresses
	// (the embedded TURN relay connects from them) are not counted against it. 0: no
	// per-address cap.
	TCPMaxConnsPerIP int `koanf:"tcp_max_conns_per_ip"`
	// TCPSetupTimeout closes an ICE-TCP connection whose first STUN binding request has not
	// arrived within it, or named no session of this server.
	TCPSetupTimeout time.Duration `koanf:"tcp_setup_timeout"`
	// NodeIP is the IP address advertised in ICE candidates, or one IPv4 and one IPv6
	// address separated by a comma ("203.0.113.9,2001:db8::9"), each for its family; empty
	// means the interface addresses (and so for a family it does not name). See NodeIPs.
	NodeIP string `koanf:"node_ip"`
	// IncludeLoopback advertises loopback candidates (on in dev mode, for same-host clients).
	IncludeLoopback bool `koanf:"include_loopback"`
	// STUNServers and TURNServers are handed to clients in the join response (URLs).
	STUNServers []string `koanf:"stun_servers"`
	// PLIThrottle is the minimum interval between keyframe requests sent to one publisher layer.
	PLIThrottle time.Duration `koanf:"pli_throttle"`
	// PacketCacheSize is how many packets per received layer are kept to answer NACKs.
	PacketCacheSize int `koanf:"packet_cache_size"`
	// DirectSRTP sends forwarded media with the SFU's own SRTP and batched UDP writes
	// instead of pion's per-packet write path (see sfu/srtpout); false is the fallback.
	DirectSRTP bool `koanf:"direct_srtp"`
	// DownlinkControl fits each subscriber's video layers to what its downlink carries,
	// judged from its receiver reports (see sfu.Allocator); false forwards what the
	// subscriber asks for whatever the loss.
	DownlinkControl bool `koanf:"downlink_control"`
	// CaptureAudioDir, in dev mode only, is where every published audio track's RTP is
	// written as it arrives (<track sid>.rtp, length-prefixed), for the RED tests' captures;
	// empty: none.
	CaptureAudioDir string `koanf:"capture_audio_dir"`
}

// RoomConfig configures room lifecycle.
type RoomConfig struct {
	// AutoCreate creates a room when the first participant joins it.
	AutoCreate bool `koanf:"auto_create"`
	// EmptyTimeout closes a room that nobody has joined for this long after creation.
	EmptyTimeout time.Duration `koanf:"empty_timeout"`
	// DepartureTimeout closes a room this long after its last participant left.
	DepartureTimeout time.Duration `koanf:"departure_timeout"`
	// MaxParticipants caps each room's participants; 0 means unlimited.
	MaxParticipants int `koanf:"max_participants"`
	// SyncStreams sends a participant's camera and microphone (a screen share and its audio)
	// to subscribers in one stream, which browsers play in sync.
	SyncStreams bool `koanf:"sync_streams"`
}

// SignalConfig configures the websocket signaling endpoint.
type SignalConfig struct {
	// MaxMessageBytes is the largest signal message accepted from a client.
	MaxMessageBytes int `koanf:"max_message_bytes"`
	// RateLimit is the sustained number of messages per second accepted from one client.
	RateLimit float64 `koanf:"rate_limit"`
	// RateBurst is the burst of messages allowed above RateLimit.
	RateBurst int `koanf:"rate_burst"`
	// PingInterval is how often clients ping the server; sent to them in the join response.
	PingInterval time.Duration `koanf:"ping_interval"`
	// PingTimeout is how long without a ping before a connection is considered dead; sent to
	// clients in the join response. It must exceed PingInterval.
	PingTimeout time.Duration `koanf:"ping_timeout"`
	// WriteQueue is the number of outgoing messages buffered per client before it is dropped.
	WriteQueue int `koanf:"write_queue"`
	// JoinRateLimit is the sustained number of joins per second accepted from one client
	// address (IPv4 address or IPv6 /64; loopback exempt); negative: no limit.
	JoinRateLimit float64 `koanf:"join_rate_limit"`
	// JoinRateBurst is the burst of joins accepted from one address above JoinRateLimit.
	JoinRateBurst int `koanf:"join_rate_burst"`
	// TrustProxyHeaders takes client addresses from X-Forwarded-For / X-Real-IP (signaling,
	// and the classroom API's sign-in limits); set it only when every request comes through
	// a reverse proxy that sets them.
	TrustProxyHeaders bool `koanf:"trust_proxy_headers"`
}

// LimitConfig bounds the names, metadata, attributes and tracks clients and Room API calls
// can make the server keep; the first five keys are LiveKit's (its limit section).
type LimitConfig struct {
	// MaxRoomNameLength bounds room names, in bytes.
	MaxRoomNameLength int `koanf:"max_room_name_length"`
	// MaxParticipantIdentityLength bounds participant identities, in bytes.
	MaxParticipantIdentityLength int `koanf:"max_participant_identity_length"`
	// MaxParticipantNameLength bounds participant names, in bytes.
	MaxParticipantNameLength int `koanf:"max_participant_name_length"`
	// MaxMetadataSize bounds participant and room metadata, in bytes.
	MaxMetadataSize int `koanf:"max_metadata_size"`
	// MaxAttributesSize bounds the total size of a participant's attributes, in bytes.
	MaxAttributesSize int `koanf:"max_attributes_size"`
	// MaxAttributes bounds the number of a participant's attributes.
	MaxAttributes int `koanf:"max_attributes"`
	// MaxTracksPerParticipant bounds the tracks one participant announces and publishes.
	MaxTracksPerParticipant int `koanf:"max_tracks_per_participant"`
}

// LogConfig configures structured logging.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `koanf:"level"`
	// Format is "text" or "json".
	Format string `koanf:"format"`
}

// RedisConfig configures the optional Redis used for multi-node state. Empty Address: none.
type RedisConfig struct {
	// Address is host:port of the Redis server.
	Address string `koanf:"address"`
	// Username is the Redis ACL user name; empty for none.
	Username string `koanf:"username"`
	// Password is the Redis password; empty for none.
	Password string `koanf:"password"`
	// DB is the Redis database number.
	DB int `koanf:"db"`
}

// RecordingConfig configures the server-side recorder: which rooms are recorded, where
// recordings are spooled and stored.
type RecordingConfig struct {
	// Enabled runs the recorder (its HTTP API answers only then).
	Enabled bool `koanf:"enabled"`
	// AutoRooms are room name patterns (path.Match globs such as "delivery-*") recorded
	// automatically whenever they have participants.
	AutoRooms []string `koanf:"auto_rooms"`
	// AutoMetadata also records rooms whose metadata is JSON with "record": true.
	AutoMetadata bool `koanf:"auto_metadata"`
	// SpoolDir holds recordings being written; empty means <data_dir>/recording-spool.
	SpoolDir string `koanf:"spool_dir"`
	// SpoolLimitMB caps the data waiting for upload when the store is unreachable; 0: none.
	SpoolLimitMB int `koanf:"spool_limit_mb"`
	// PartSizeMB is the multipart upload part size (at least 5).
	PartSizeMB int `koanf:"part_size_mb"`
	// FlushInterval is how often data not yet in a part is uploaded (bounds crash loss).
	FlushInterval time.Duration `koanf:"flush_interval"`
	// LinkExpiry is the validity of download links: the signed links of the download route
	// and the presigned URLs of an S3 store.
	LinkExpiry time.Duration `koanf:"link_expiry"`
	// Storage says where finished recordings go.
	Storage RecordingStorageConfig `koanf:"storage"`
}

// RecordingStorageConfig selects the recording store.
type RecordingStorageConfig struct {
	// Type is "local" (a folder) or "s3".
	Type string `koanf:"type"`
	// LocalDir is the folder of the local store; empty means <data_dir>/recordings.
	LocalDir string `koanf:"local_dir"`
	// Prefix starts every object key (recordings are under <prefix><room>/<recording id>/,
	// the room's name escaped).
	Prefix string `koanf:"prefix"`
	// S3 configures an S3-compatible store.
	S3 S3Config `koanf:"s3"`
}

// S3Config configures an S3-compatible object store.
type S3Config struct {
	// Endpoint is the store's URL (https://s3.amazonaws.com, http://minio:9000).
	Endpoint string `koanf:"endpoint"`
	// Region is the bucket's region.
	Region string `koanf:"region"`
	// Bucket receives the recordings.
	Bucket string `koanf:"bucket"`
	// PathStyle addresses the bucket as endpoint/bucket (MinIO and most self-hosted stores).
	PathStyle bool `koanf:"path_style"`
	// AccessKey and SecretKey are the store's credentials.
	AccessKey string `koanf:"access_key"`
	SecretKey string `koanf:"secret_key"`
	// Timeout bounds each call to the store (plus the time to move an object at 64 KiB/s);
	// 0 means 30 s.
	Timeout time.Duration `koanf:"timeout"`
}

// ClassroomConfig configures "three classrooms": the dataset (regions, schools, classrooms,
// pairings, timetable, accounts), classroom sign-in, session statistics and reporting to the
// education platform. See configs/sanke.yaml.
type ClassroomConfig struct {
	// Enabled runs the classroom service (REST API under /api/v1/, database in data_dir).
	Enabled bool `koanf:"enabled"`
	// Dataset lists YAML/JSON/CSV files or folders merged into the dataset at start.
	Dataset []string `koanf:"dataset"`
	// Timezone is the IANA time zone of timetables, days, weeks and months.
	Timezone string `koanf:"timezone"`
	// AdminKey, when set, is accepted as a bearer token with full API rights.
	AdminKey string `koanf:"admin_key"`
	// TokenKey is the API key that signs room and sign-in tokens; empty: the first key.
	TokenKey string `koanf:"token_key"`
	// PublicURL is the websocket URL handed out with room tokens.
	PublicURL string `koanf:"public_url"`
	// ValidShare is the share of the scheduled time a receiving classroom must be connected
	// with video delivered for its session to count as valid.
	ValidShare float64 `koanf:"valid_share"`
	// SampleInterval is how often room statistics are sampled.
	SampleInterval time.Duration `koanf:"sample_interval"`
	// FinalizeDelay is how long after a session's scheduled end its record is made and sent.
	FinalizeDelay time.Duration `koanf:"finalize_delay"`
	// EarlyJoin is how long before a session's start its room tokens are issued.
	EarlyJoin time.Duration `koanf:"early_join"`
	// LoginTTL is the validity of sign-in tokens.
	LoginTTL time.Duration `koanf:"login_ttl"`
	// PasswordCost is the bcrypt cost of stored account passwords (4-31).
	PasswordCost int `koanf:"password_cost"`
	// LoginPerMinute is how many sign-ins one client address may attempt in a burst, and
	// per minute after it.
	LoginPerMinute int `koanf:"login_per_minute"`
	// ControlPerMinute is how many class control requests (hand, call-on, mode) one room
	// participant may make per minute, after a burst of 10.
	ControlPerMinute int `koanf:"control_per_minute"`
	// TokenPerMinute is how many room token, view token and /me requests one account may make
	// in a burst, and per minute after it.
	TokenPerMinute int `koanf:"token_per_minute"`
	// RoutineMinPerWeek and RoutineWeeks define routine use: that many valid sessions a week
	// for that many consecutive weeks.
	RoutineMinPerWeek int `koanf:"routine_min_per_week"`
	RoutineWeeks      int `koanf:"routine_weeks"`
	// Platform is where session records and daily reports are pushed.
	Platform PlatformConfig `koanf:"platform"`
}

// PlatformConfig configures the push of records to the education platform.
type PlatformConfig struct {
	// URL receives the POSTs; empty: nothing is pushed (records stay available by API).
	URL string `koanf:"url"`
	// Secret signs each POST (HMAC-SHA256).
	Secret string `koanf:"secret"`
	// RetryMin and RetryMax bound the exponential backoff between delivery attempts.
	RetryMin time.Duration `koanf:"retry_min"`
	RetryMax time.Duration `koanf:"retry_max"`
	// DailyReportHour is the local hour after which the previous day's report is sent; -1: never.
	DailyReportHour int `koanf:"daily_report_hour"`
}

// WebhookConfig configures LiveKit-format webhooks.
type WebhookConfig struct {
	// URLs receive every room, participant, track and recording event.
	URLs []string `koanf:"urls"`
	// APIKey is the key whose secret signs the webhooks; empty: the only configured key.
	APIKey string `koanf:"api_key"`
}

// Default returns the production defaults. It has no API keys: a production server must be
// given at least one (see Validate).
func Default() *Config {
	return &Config{
		BindAddresses: []string{"::"},
		Port:          7880,
		DataDir:       "./data",
		RTC: RTCConfig{
			UDPPort:         7882,
			TCPPort:         7881,
			STUNServers:     []string{},
			PLIThrottle:     500 * time.Millisecond,
			PacketCacheSize: 512,
			DirectSRTP:      true,
			DownlinkControl: true,

			TCPMaxConns:      8192,
			TCPMaxConnsPerIP: 1024,
			TCPSetupTimeout:  10 * time.Second,
		},
		TURN: TURNConfig{
			UDPPort:             3478,
			TCPPort:             3478,
			TLSPort:             5349,
			RelayPortRangeStart: 30000,
			RelayPortRangeEnd:   40000,
			CredentialTTL:       8 * time.Hour,
			// Up to 3 URLs x 2 PeerConnections x 2 networks x 2 ICE generations.
			MaxAllocationsPerParticipant: 24,
			MaxAllocationsPerAddress:     512,
			MaxAllocations:               4096,
			MaxConnections:               4096,
			MaxConnectionsPerAddress:     256,
			SetupTimeout:                 10 * time.Second,
		},
		Room: RoomConfig{
			AutoCreate:       true,
			EmptyTimeout:     5 * time.Minute,
			DepartureTimeout: 20 * time.Second,
			SyncStreams:      true,
		},
		Signal: SignalConfig{
			MaxMessageBytes: 1 << 20,
			RateLimit:       50,
			RateBurst:       100,
			PingInterval:    5 * time.Second,
			PingTimeout:     15 * time.Second,
			WriteQueue:      256,
			JoinRateLimit:   10,
			JoinRateBurst:   100,
		},
		Limit: LimitConfig{
			MaxRoomNameLength:            256,
			MaxParticipantIdentityLength: 256,
			MaxParticipantNameLength:     256,
			MaxMetadataSize:              64000,
			MaxAttributesSize:            64000,
			MaxAttributes:                64,
			MaxTracksPerParticipant:      16,
		},
		Log: LogConfig{
			Level:  "info",
			Format: "text",
		},
		Recording: RecordingConfig{
			Enabled:       true,
			AutoRooms:     []string{},
			AutoMetadata:  true,
			SpoolLimitMB:  10240,
			PartSizeMB:    8,
			FlushInterval: 2 * time.Second,
			LinkExpiry:    time.Hour,
			Storage:       RecordingStorageConfig{Type: "local"},
		},
		Classroom: ClassroomConfig{
			Dataset:           []string{},
			Timezone:          "Asia/Shanghai",
			ValidShare:        0.8,
			SampleInterval:    10 * time.Second,
			FinalizeDelay:     5 * time.Minute,
			EarlyJoin:         30 * time.Minute,
			LoginTTL:          12 * time.Hour,
			PasswordCost:      10,
			LoginPerMinute:    30,
			ControlPerMinute:  30,
			TokenPerMinute:    60,
			RoutineMinPerWeek: 2,
			RoutineWeeks:      4,
			Platform: PlatformConfig{
				RetryMin:        5 * time.Second,
				RetryMax:        10 * time.Minute,
				DailyReportHour: 1,
			},
		},
		Webhook: WebhookConfig{URLs: []string{}},
		HTTP: HTTPConfig{
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    128 << 10,
			MaxConns:          10000,
			MaxConnsPerIP:     256,
		},
		Metrics: MetricsConfig{AllowedCIDRs: []string{}},
	}
}

// DevDefault returns the defaults used in dev mode: Default with Dev set, listening on
// 127.0.0.1, the key DevAPIKey/DevAPISecret, loopback ICE candidates and data under ./data.
// Anything set explicitly (file, environment, flags) still overrides these: `--dev --bind
// 0.0.0.0` listens on every interface, and `sanke serve` warns about it.
func DevDefault() *Config {
	c := Default()
	c.Dev = true
	c.BindAddresses = []string{"127.0.0.1"}
	c.Keys = map[string]string{DevAPIKey: DevAPISecret}
	c.RTC.IncludeLoopback = true
	c.DataDir = "./data"
	return c
}
