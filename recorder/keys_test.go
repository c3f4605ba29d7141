package recorder

import (
	"strings"
	"testing"
)

// keyTestNames are names that the escaping before issue 12 mapped together, and names that
// could leave a folder or hide in it.
var keyTestNames = []string{
	"class 1", "class:1", "class_1", "class%201", "class%3A1", "Class 1",
	"a b", "a_b", "a%20b", "a/b", "a\\b", "a\x00b", "a\nb",
	"", "~", ".", "..", ".hidden", "..%2F", "%", "%2", "%2E", "a.", "a..b",
	"王老师", "王老师 ", "王 老师", "e\u0301", "\u00e9",
	"camera", "x_camera", "x_screen_share", "x_camera_2", "x_2",
	strings.Repeat("a", maxKeyName), strings.Repeat("a", maxKeyName+1), strings.Repeat("a", maxKeyName+2),
	strings.Repeat("王", 200), strings.Repeat("王", 200) + "x", strings.Repeat(" ", 100),
}

func TestKeyNameIsOneToOneAndSafe(t *testing.T) {
	seen := map[string]string{}
	for _, n := range keyTestNames {
		k := keyName(n)
		if prev, dup := seen[k]; dup {
			t.Errorf("%q and %q share the key name %q", prev, n, k)
		}
		seen[k] = n
		if k == "" || k == "." || k == ".." || strings.HasPrefix(k, ".") || strings.ContainsAny(k, "/\\ \x00\n") || len(k) > maxKeyName {
			t.Errorf("key name %q of %q is not a safe component", k, n)
		}
		shortened := k != "~" && strings.Contains(k, "~")
		if back, ok := unescapeKeyName(k); ok == shortened || (ok && back != n) {
			t.Errorf("unescapeKeyName(%q) = %q, %v; want %q", k, back, ok, n)
		}
	}
	for _, plain := range []string{"class-7b", "teacher_wang", "Room.2024-09-03"} {
		if k := keyName(plain); k != plain {
			t.Errorf("plain name %q became %q", plain, k)
		}
	}
	for _, bad := range []string{"a b", "%zz", "%2e", ".a", "a%2", "a/b"} {
		if _, ok := unescapeKeyName(bad); ok {
			t.Errorf("unescapeKeyName(%q) accepted a name keyName never makes", bad)
		}
	}
}

func TestFileNamesAreOneToOne(t *testing.T) {
	seen := map[string]string{}
	for _, id := range keyTestNames {
		for _, g := range []string{"camera", "screen_share"} {
			for _, n := range []int{1, 2, 12} {
				for _, ext := range []string{".webm", ".mkv"} {
					name := fileName(id, g, n, ext)
					desc := id + "|" + g + "|" + ext
					if prev, dup := seen[name]; dup {
						t.Errorf("%q and %q share the file name %q", prev, desc, name)
					}
					seen[name] = desc
					if name == ManifestName || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\") || len(name) > 200 {
						t.Errorf("file name %q of %q is not safe", name, desc)
					}
					gotID, gotG, ok := fileOwner(name)
					if gotG != g || (ok && gotID != id) || (!ok && !strings.Contains(keyName(id), "~")) {
						t.Errorf("fileOwner(%q) = %q, %q, %v; want %q, %q", name, gotID, gotG, ok, id, g)
					}
				}
			}
		}
	}
}

func TestRoomPrefixes(t *testing.T) {
	r := &Recorder{opts: Options{Prefix: "classes/"}}
	if got := r.roomPrefixes("class 1"); len(got) != 2 || got[0] != "classes/class%201/" || got[1] != "classes/class_1/" {
		t.Errorf("prefixes of %q: %q", "class 1", got)
	}
	if got := r.roomPrefixes("class_1"); len(got) != 1 || got[0] != "classes/class_1/" {
		t.Errorf("prefixes of %q: %q", "class_1", got)
	}
	if got := r.sessionPrefix("a/../b", "RC_1"); got != "classes/a%2F..%2Fb/RC_1/" {
		t.Errorf("session prefix %q", got)
	}
}
