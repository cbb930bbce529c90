package engine_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

func TestParseArtifact(t *testing.T) {
	war := artifact(t)
	digest := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		raw     string
		want    engine.Artifact
		wantErr string
	}{
		{"file", war, engine.Artifact{Path: war}, ""},
		{"url", "https://nexus.example/app.war#sha256=" + digest, engine.Artifact{URL: "https://nexus.example/app.war", SHA256: digest}, ""},
		{"digest in upper case", "http://nexus.example/app.war#sha256=" + strings.ToUpper(digest), engine.Artifact{URL: "http://nexus.example/app.war", SHA256: digest}, ""},

		{"empty", "", engine.Artifact{}, "empty (give a path to a WAR/JAR or an http(s) URL)"},
		{"no such file", "nope.war", engine.Artifact{}, "nope.war: no such file"},
		{"directory", filepath.Dir(war), engine.Artifact{}, "not a regular file"},
		{"url without digest", "https://nexus.example/app.war", engine.Artifact{}, "https://nexus.example/app.war: add the digest the agent must check: https://nexus.example/app.war#sha256=<64 hex>"},
		{"short digest", "https://nexus.example/app.war#sha256=abc", engine.Artifact{}, "add the digest"},
		{"digest not hex", "https://nexus.example/app.war#sha256=" + strings.Repeat("zz", 32), engine.Artifact{}, "add the digest"},
		{"other fragment", "https://nexus.example/app.war#md5=" + digest, engine.Artifact{}, "add the digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engine.ParseArtifact(tt.raw)
			if checkError(t, err, tt.wantErr) {
				return
			}
			if got != tt.want {
				t.Fatalf("ParseArtifact(%q) = %+v, want %+v", tt.raw, got, tt.want)
			}
			if again, err := engine.ParseArtifact(got.String()); err != nil || again != got {
				t.Fatalf("ParseArtifact(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

// preparer is a fleet that records what Prepare was given.
type preparer struct {
	*enginetest.Fleet
	artifacts []engine.Artifact
}

func (p *preparer) Prepare(ctx context.Context, servers []string, artifacts []engine.Artifact) error {
	p.artifacts = artifacts
	return nil
}

// TestArtifactParam follows an artifact param from the command line to the
// target: parsed once, a string in Lua, an Artifact in the step and in
// Prepare.
func TestArtifactParam(t *testing.T) {
	url := "https://nexus.example/app.war#sha256=" + strings.Repeat("ab", 32)
	code := `return {
  name = "flow",
  params = { service = { doc = "s" }, artifact = { type = "artifact", doc = "a" } },
  each = function(i, ctx)
    assert(type(ctx.params.artifact) == "string", "artifact is a string in Lua")
    assert(ctx.params.artifact == "` + url + `", "artifact as given")
    i:install(ctx.params.artifact)
  end,
}`
	for _, dryRun := range []bool{false, true} {
		p := &preparer{Fleet: fleet("web01")}
		rep, err := run(context.Background(), registry(t, map[string]string{"flow": code}), "flow",
			map[string]string{"service": "A", "artifact": url}, engine.Options{Servers: []string{"web01"}, Target: p, DryRun: dryRun})
		if err != nil || rep.ExitCode != engine.ExitOK {
			t.Fatalf("dry run %v: err %v, report %+v", dryRun, err, rep)
		}
		want := engine.Artifact{URL: "https://nexus.example/app.war", SHA256: strings.Repeat("ab", 32)}
		if got := rep.Instances[0].Steps[len(rep.Instances[0].Steps)-1].Args["artifact"]; got != want {
			t.Fatalf("dry run %v: install args %#v, want %#v", dryRun, got, want)
		}
		wantPrepared := []engine.Artifact{want}
		if dryRun {
			wantPrepared = nil
		}
		if !reflect.DeepEqual(p.artifacts, wantPrepared) {
			t.Fatalf("dry run %v: prepared %v, want %v", dryRun, p.artifacts, wantPrepared)
		}
	}
}

// TestArtifactDefault: an artifact's default is checked when a run uses it.
func TestArtifactDefault(t *testing.T) {
	code := `return {
  name = "flow",
  params = { service = { doc = "s" }, artifact = { type = "artifact", doc = "a", default = "missing.war" } },
  each = function(i, ctx) i:install(ctx.params.artifact) end,
}`
	tmpl, err := registry(t, map[string]string{"flow": code}).Get("flow")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.ParseParams(map[string]string{"service": "A"})
	if err == nil || engine.ExitCode(err) != engine.ExitUsage || !strings.Contains(err.Error(), "flow: --artifact: missing.war: no such file") || !strings.Contains(err.Error(), "(the default in test/flow.lua)") {
		t.Fatalf("err = %v", err)
	}
	if _, err := tmpl.ParseParams(map[string]string{"service": "A", "artifact": artifact(t)}); err != nil {
		t.Fatalf("given artifact: %v", err)
	}
}
