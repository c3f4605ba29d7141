package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts the name of every environment variable Load reads. A key's variable is the
// prefix followed by the key path in upper case with dots replaced by underscores:
// port -> SANKE_PORT, rtc.udp_port -> SANKE_RTC_UDP_PORT, room.empty_timeout ->
// SANKE_ROOM_EMPTY_TIMEOUT. See LoadOptions.Env for how values are written.
const EnvPrefix = "SANKE_"

// EnvConfigFile names the environment variable holding the config file path, used when
// LoadOptions.File is empty. It is not a config key.
const EnvConfigFile = EnvPrefix + "CONFIG"

// LoadOptions says where Load reads configuration from. Every source is optional.
type LoadOptions struct {
	// File is the path of a YAML config file (see configs/sanke.yaml). Empty means the file
	// named by the SANKE_CONFIG environment variable in Env, or no file when that is unset too.
	// Unknown keys in the file are an error; a key with an empty (null) value counts as unset.
	File string

	// Env is the environment as "NAME=value" strings, normally os.Environ(). Only variables
	// named EnvPrefix + key (see EnvPrefix) are read; other SANKE_* variables are ignored, and
	// so are empty ones. Values are written as in YAML scalars: durations like "5m" or "500ms",
	// booleans "true"/"false", lists comma-separated ("10.0.0.1,10.0.0.2"), and keys as
	// "key1: secret1, key2: secret2" (see ParseKeys).
	Env []string

	// Flags is an already parsed flag set, usually one prepared with AddFlags. Only the flags
	// listed in AddFlags that were set explicitly override; other flags are ignored. Values are
	// written as for Env.
	Flags *flag.FlagSet
}

// Load builds the configuration. Precedence, lowest first: Default (or DevDefault when dev mode
// is switched on by any source), the config file, the environment, the flags. Maps and lists
// are replaced, not merged: keys given in the environment replace those of the file.
//
// Load does not call Validate.
func Load(opts LoadOptions) (*Config, error) {
	table := keyTable()

	var layers []*koanf.Koanf
	file := opts.File
	if file == "" {
		file = lookupEnv(opts.Env, EnvConfigFile)
	}
	if file != "" {
		l, err := fileLayer(file, table)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	l, err := envLayer(opts.Env, table)
	if err != nil {
		return nil, err
	}
	if l != nil {
		layers = append(layers, l)
	}
	if opts.Flags != nil {
		l, err := flagLayer(opts.Flags, table)
		if err != nil {
			return nil, err
		}
		if l != nil {
			layers = append(layers, l)
		}
	}

	// Dev mode changes the defaults, so find out whether it is on before layering.
	probe := koanf.New(".")
	for _, l := range layers {
		if err := probe.Merge(l); err != nil {
			return nil, err
		}
	}
	var dev struct {
		Dev bool `koanf:"dev"`
	}
	if err := decode(probe, &dev, false); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	base := Default()
	if dev.Dev {
		base = DevDefault()
	}

	k := koanf.New(".")
	if err := k.Load(confmap.Provider(structToMap(reflect.ValueOf(*base)), ""), nil); err != nil {
		return nil, fmt.Errorf("config: loading defaults: %w", err)
	}
	for _, l := range layers {
		if _, ok := l.Raw()["keys"]; ok {
			k.Delete("keys") // a source giving keys replaces all lower-precedence keys
		}
		if err := k.Merge(l); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	var c Config
	if err := decode(k, &c, true); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &c, nil
}

// ParseKeys parses API keys written as "key1: secret1, key2: secret2": pairs separated by commas
// or newlines, each key separated from its secret by the first colon. Surrounding spaces are
// ignored. This is the format of SANKE_KEYS and --keys. Errors never contain secrets.
func ParseKeys(s string) (map[string]string, error) {
	keys := make(map[string]string)
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' })
	for i, entry := range entries {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, secret, ok := strings.Cut(entry, ":")
		key, secret = strings.TrimSpace(key), strings.TrimSpace(secret)
		switch {
		case !ok:
			return nil, fmt.Errorf("keys: entry %d is not \"key: secret\"", i+1)
		case key == "":
			return nil, fmt.Errorf("keys: entry %d has an empty key", i+1)
		case secret == "":
			return nil, fmt.Errorf("keys: key %q has an empty secret", key)
		}
		if _, dup := keys[key]; dup {
			return nil, fmt.Errorf("keys: key %q given twice", key)
		}
		keys[key] = secret
	}
	return keys, nil
}

// flagSpec ties a command-line flag to a config key.
type flagSpec struct {
	name  string
	key   string
	usage string
}

// flagSpecs lists the flags AddFlags defines and Load understands.
func flagSpecs() []flagSpec {
	return []flagSpec{
		{"dev", "dev", "development mode: key devkey/secret, loopback candidates, 127.0.0.1 unless --bind says otherwise"},
		{"bind", "bind_addresses", "comma-separated IP addresses to listen on (:: every address, IPv4 and IPv6); one address also binds the media sockets"},
		{"port", "port", "HTTP/websocket port (signaling, Room API)"},
		{"udp-port", "rtc.udp_port", "UDP port for all WebRTC media"},
		{"tcp-port", "rtc.tcp_port", "ICE-TCP port for clients behind UDP-blocking firewalls; 0 disables"},
		{"node-ip", "rtc.node_ip", "public IP advertised in ICE candidates (set it behind NAT), or \"v4,v6\""},
		{"keys", "keys", "API keys as \"key1: secret1, key2: secret2\" (visible in ps: prefer the environment)"},
		{"log-level", "log.level", "log level: debug, info, warn or error"},
		{"log-format", "log.format", "log format: text or json"},
		{"data-dir", "data_dir", "directory for local state"},
	}
}

// AddFlags defines on fs the flags that Load maps onto config keys: --dev, --bind, --port,
// --udp-port, --tcp-port, --node-ip, --keys, --log-level, --log-format and --data-dir. Their own
// defaults are zero values; only flags set explicitly override the file and environment.
func AddFlags(fs *flag.FlagSet) {
	table := keyTable()
	defaults := structToMap(reflect.ValueOf(*Default()))
	for _, spec := range flagSpecs() {
		info := table[spec.key]
		usage := fmt.Sprintf("%s (key %s, env %s", spec.usage, spec.key, info.env)
		if d := lookupPath(defaults, spec.key); d != nil && !reflect.ValueOf(d).IsZero() {
			usage += fmt.Sprintf(", default %s", formatValue(d))
		}
		usage += ")"
		switch info.kind {
		case reflect.Bool:
			fs.Bool(spec.name, false, usage)
		case reflect.Int:
			fs.Int(spec.name, 0, usage)
		default:
			fs.String(spec.name, "", usage)
		}
	}
}

// keyInfo describes one leaf config key.
type keyInfo struct {
	env  string       // environment variable name
	kind reflect.Kind // kind of the Go field
}

// keyTable maps every leaf key path ("rtc.udp_port") of Config to its description.
func keyTable() map[string]keyInfo {
	table := make(map[string]keyInfo)
	walkKeys(reflect.TypeOf(Config{}), "", func(path string, t reflect.Type) {
		table[path] = keyInfo{
			env:  EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_")),
			kind: t.Kind(),
		}
	})
	return table
}

// sectionPaths returns the paths of the nested sections of Config ("rtc", "room", ...).
func sectionPaths() map[string]bool {
	sections := make(map[string]bool)
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for f := range t.Fields() {
			tag := f.Tag.Get("koanf")
			if tag == "" || tag == "-" || f.Type.Kind() != reflect.Struct {
				continue
			}
			sections[joinPath(prefix, tag)] = true
			walk(f.Type, joinPath(prefix, tag))
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return sections
}

// walkKeys calls fn for each leaf field of struct type t that has a koanf tag.
func walkKeys(t reflect.Type, prefix string, fn func(path string, t reflect.Type)) {
	for f := range t.Fields() {
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			walkKeys(f.Type, joinPath(prefix, tag), fn)
			continue
		}
		fn(joinPath(prefix, tag), f.Type)
	}
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// structToMap turns a config struct into the nested map koanf holds.
func structToMap(v reflect.Value) map[string]any {
	out := make(map[string]any)
	t := v.Type()
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Struct:
			out[tag] = structToMap(fv)
		case reflect.Map:
			if fv.Len() == 0 {
				continue
			}
			m := make(map[string]any, fv.Len())
			for it := fv.MapRange(); it.Next(); {
				m[it.Key().String()] = it.Value().Interface()
			}
			out[tag] = m
		case reflect.Slice:
			s := make([]any, fv.Len())
			for j := range fv.Len() {
				s[j] = fv.Index(j).Interface()
			}
			out[tag] = s
		default:
			out[tag] = fv.Interface()
		}
	}
	return out
}

// lookupPath returns the value at a dotted path of a nested map, or nil.
func lookupPath(m map[string]any, path string) any {
	head, rest, nested := strings.Cut(path, ".")
	v, ok := m[head]
	if !ok {
		return nil
	}
	if !nested {
		return v
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	return lookupPath(sub, rest)
}

// formatValue renders a default for flag usage text.
func formatValue(v any) string {
	if s, ok := v.([]any); ok {
		parts := make([]string, len(s))
		for i, e := range s {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// fileLayer reads and checks a YAML config file.
func fileLayer(path string, table map[string]keyInfo) (*koanf.Koanf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	m, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if m == nil {
		m = make(map[string]any)
	}
	pruneNil(m)
	if keys, ok := m["keys"].(map[string]any); ok && len(keys) == 0 {
		delete(m, "keys")
	}
	if unknown := unknownKeys(m, "", table, sectionPaths()); len(unknown) > 0 {
		return nil, fmt.Errorf("config file %s: unknown keys: %s", path, strings.Join(unknown, ", "))
	}
	if keys, ok := m["keys"].(map[string]any); ok {
		for k, v := range keys {
			// YAML reads an all-digit secret as a number, which would change its text.
			if _, ok := v.(string); !ok {
				return nil, fmt.Errorf("config file %s: keys.%s: the secret must be a string; quote it", path, k)
			}
		}
	}
	return newLayer("config file "+path, m, "", nil)
}

// pruneNil removes keys with null values ("port:" with nothing after it) so that they fall back
// to lower-precedence values instead of zeroing them.
func pruneNil(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNil(v)
		}
	}
}

// unknownKeys returns the sorted paths in m that are neither config keys nor sections.
func unknownKeys(m map[string]any, prefix string, table map[string]keyInfo, sections map[string]bool) []string {
	var unknown []string
	for k, v := range m {
		p := joinPath(prefix, k)
		switch {
		case table[p].env != "":
			// A known leaf; its contents (e.g. the keys map) are checked when decoding.
		case sections[p]:
			if sub, ok := v.(map[string]any); ok {
				unknown = append(unknown, unknownKeys(sub, p, table, sections)...)
			}
		default:
			unknown = append(unknown, p)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// envLayer collects SANKE_* variables.
func envLayer(env []string, table map[string]keyInfo) (*koanf.Koanf, error) {
	byEnv := make(map[string]string, len(table))
	for path, info := range table {
		byEnv[info.env] = path
	}
	values := make(map[string]any)
	for _, kv := range env {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || raw == "" {
			continue
		}
		path, known := byEnv[name]
		if !known {
			continue
		}
		if path == "port" && strings.Contains(raw, "://") {
			return nil, fmt.Errorf("environment: %s=%q looks like a Kubernetes service link "+
				"(a Service named \"sanke\"); set enableServiceLinks: false in the pod spec", name, raw)
		}
		v, err := parseString(path, table[path], raw)
		if err != nil {
			return nil, fmt.Errorf("environment: %s: %w", name, err)
		}
		if v != nil {
			values[path] = v
		}
	}
	if len(values) == 0 {
		return nil, nil
	}
	return newLayer("environment", values, ".", func(path string) string {
		if info, ok := table[path]; ok {
			return info.env
		}
		return path
	})
}

// flagLayer collects the explicitly set flags that AddFlags defines.
func flagLayer(fs *flag.FlagSet, table map[string]keyInfo) (*koanf.Koanf, error) {
	byName := make(map[string]string)
	byKey := make(map[string]string)
	for _, spec := range flagSpecs() {
		byName[spec.name] = spec.key
		byKey[spec.key] = "--" + spec.name
	}
	values := make(map[string]any)
	var err error
	fs.Visit(func(f *flag.Flag) {
		path, ok := byName[f.Name]
		if !ok || err != nil {
			return
		}
		var v any
		v, err = parseString(path, table[path], f.Value.String())
		if err != nil {
			err = fmt.Errorf("flag --%s: %w", f.Name, err)
			return
		}
		if v != nil {
			values[path] = v
		}
	})
	if err != nil {
		return nil, err
	}
	if len(values) == 0 {
		return nil, nil
	}
	return newLayer("flags", values, ".", func(path string) string {
		if name, ok := byKey[path]; ok {
			return name
		}
		return path
	})
}

// parseString converts an environment or flag string for a key. Scalars stay strings (the
// decoder converts them); lists are split on commas and keys parsed with ParseKeys. A nil
// result means "not set".
func parseString(path string, info keyInfo, raw string) (any, error) {
	switch info.kind {
	case reflect.Slice:
		var list []any
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		if list == nil {
			list = []any{}
		}
		return list, nil
	case reflect.Map:
		keys, err := ParseKeys(raw)
		if err != nil || len(keys) == 0 {
			return nil, err
		}
		m := make(map[string]any, len(keys))
		for k, s := range keys {
			m[k] = s
		}
		return m, nil
	default:
		return raw, nil
	}
}

// newLayer loads values into a koanf instance and checks that they decode, so that type errors
// name their source. name turns a key path into what the user wrote (an environment variable, a
// flag); nil keeps the path.
func newLayer(source string, values map[string]any, delim string, name func(string) string) (*koanf.Koanf, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(values, delim), nil); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var probe Config
	if err := decode(k, &probe, true); err != nil {
		return nil, fmt.Errorf("%s: %w", source, describeDecodeError(err, name))
	}
	return k, nil
}

// describeDecodeError rewrites mapstructure's multi-line errors as "name: problem; ...". Values
// of secret keys are never shown.
func describeDecodeError(err error, name func(string) string) error {
	if name == nil {
		name = func(path string) string { return path }
	}
	var msgs []string
	var walk func(e error)
	walk = func(e error) {
		var de *mapstructure.DecodeError
		switch x := e.(type) {
		case *mapstructure.DecodeError:
			msgs = append(msgs, name(x.Name())+": "+describeValueError(x.Name(), x.Unwrap()))
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			if errors.As(e, &de) {
				walk(x.Unwrap())
			} else {
				msgs = append(msgs, e.Error())
			}
		default:
			msgs = append(msgs, e.Error())
		}
	}
	walk(err)
	return errors.New(strings.Join(msgs, "; "))
}

// describeValueError explains why the value of key could not be decoded.
func describeValueError(key string, err error) string {
	secret := strings.HasPrefix(key, "keys") || key == "redis.password" || key == "metrics.bearer_token"
	var pe *mapstructure.ParseError
	var ue *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(err, &pe):
		want := pe.Expected.Type().String()
		switch pe.Expected.Kind() {
		case reflect.Bool:
			want = "true or false"
		case reflect.Int, reflect.Int64:
			want = "an integer"
			if pe.Expected.Type() == reflect.TypeFor[time.Duration]() {
				want = `a duration such as "500ms", "20s" or "5m"`
			}
		case reflect.Float64:
			want = "a number"
		}
		if secret {
			return "invalid value, want " + want
		}
		return fmt.Sprintf("%q is not %s", fmt.Sprint(pe.Value), want)
	case errors.As(err, &ue):
		return fmt.Sprintf("want %s, got %T", ue.Expected.Type(), ue.Value)
	default:
		return err.Error()
	}
}

// decode unmarshals k into out: strings are converted to numbers, booleans and durations.
func decode(k *koanf.Koanf, out any, errorUnused bool) error {
	return k.UnmarshalWithConf("", out, koanf.UnmarshalConf{
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook:       durationHook,
			WeaklyTypedInput: true,
			ErrorUnused:      errorUnused,
			Result:           out,
		},
	})
}

// durationHook parses strings such as "5m" into durations and refuses bare numbers, which
// would silently mean nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() || from == to {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		d, err := time.ParseDuration(data.(string))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as \"500ms\", \"20s\" or \"5m\"", data)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("%v has no unit; write durations such as \"500ms\", \"20s\" or \"5m\"", data)
	}
	return data, nil
}

// lookupEnv returns the value of name in env ("NAME=value" strings); the last one wins.
func lookupEnv(env []string, name string) string {
	var value string
	for _, kv := range env {
		if n, v, ok := strings.Cut(kv, "="); ok && n == name {
			value = v
		}
	}
	return value
}
