package engine

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Artifact is a parsed param of type artifact: a local WAR/JAR file, or an
// http(s) URL that an agent downloads itself and checks against the digest
// the URL carries. Exactly one of Path and URL is set.
type Artifact struct {
	Path   string // a local regular file, as given
	URL    string // http(s), without its #sha256= fragment
	SHA256 string // the URL's digest, 64 lower-case hex digits; "" for a file (the target hashes it)
}

// ParseArtifact reads an artifact as a user gives it: a path to an existing
// regular file, or an http(s) URL ending in #sha256=<64 hex digits>.
func ParseArtifact(raw string) (Artifact, error) {
	if raw == "" {
		return Artifact{}, fmt.Errorf("empty (give a path to a WAR/JAR or an http(s) URL)")
	}
	if strings.HasPrefix(raw, "http://") || strings.HasPrefix(raw, "https://") {
		u, frag, _ := strings.Cut(raw, "#")
		digest, ok := strings.CutPrefix(frag, "sha256=")
		if _, err := hex.DecodeString(digest); !ok || err != nil || len(digest) != 64 {
			return Artifact{}, fmt.Errorf("%s: add the digest the agent must check: %s#sha256=<64 hex>", raw, u)
		}
		return Artifact{URL: u, SHA256: strings.ToLower(digest)}, nil
	}
	fi, err := os.Stat(raw)
	if err != nil {
		return Artifact{}, fmt.Errorf("%s: no such file (give a path to a WAR/JAR or an http(s) URL)", raw)
	}
	if !fi.Mode().IsRegular() {
		return Artifact{}, fmt.Errorf("%s: not a regular file (give a path to a WAR/JAR)", raw)
	}
	return Artifact{Path: raw}, nil
}

// String is the artifact as a user gives it, and as a flow sees it: the
// path, or the URL with its #sha256= digest.
func (a Artifact) String() string {
	if a.URL != "" {
		return a.URL + "#sha256=" + a.SHA256
	}
	return a.Path
}

// MarshalText writes the artifact as [Artifact.String] does, so reports
// show what the user gave.
func (a Artifact) MarshalText() ([]byte, error) { return []byte(a.String()), nil }
