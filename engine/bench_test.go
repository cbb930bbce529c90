package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// nopTarget answers every call at once; benchmarks measure the engine alone.
type nopTarget struct{ insts []Instance }

func (n nopTarget) Instances(ctx context.Context, server, service string) ([]Instance, error) {
	return n.insts, nil
}

func (nopTarget) Do(ctx context.Context, inst Instance, step Step) (StepResult, error) {
	return StepResult{}, nil
}

const benchTemplate = `return {
  name = %q,
  description = "benchmark",
  params = {
    service = { type = "string", required = true, doc = "service" },
    artifact = { type = "artifact", required = true, doc = "artifact" },
  },
  strategy = { batch = 1, max_failures = 0 },
  each = function(i, ctx)
    i:stop()
    i:install(ctx.params.artifact)
    i:start()
    i:health{ timeout = "1s" }
  end,
  rollback = function(i, ctx, err) i:rollback() end,
}
`

// BenchmarkLoad1000 compiles and registers 1,000 templates (target: ≤ 300 ms).
func BenchmarkLoad1000(b *testing.B) {
	fsys := fstest.MapFS{}
	for i := range 1000 {
		fsys[fmt.Sprintf("t%04d.lua", i)] = &fstest.MapFile{Data: fmt.Appendf(nil, benchTemplate, fmt.Sprintf("t%04d", i))}
	}
	for b.Loop() {
		reg, err := Load(LoadOptions{}, Source{Dir: "bench", FS: fsys})
		if err != nil || len(reg.Names()) != 1000 {
			b.Fatal(err)
		}
	}
}

func benchRegistry(b *testing.B) *Registry {
	reg, err := Load(LoadOptions{}, Source{Dir: "bench", FS: fstest.MapFS{"b.lua": {Data: fmt.Appendf(nil, benchTemplate, "bench")}}})
	if err != nil {
		b.Fatal(err)
	}
	return reg
}

// BenchmarkInstance takes a Lua state from the pool and runs a 4-step each
// against an in-process target (target: ≤ 300 µs, ≤ 0.5 MB per instance).
func BenchmarkInstance(b *testing.B) {
	reg := benchRegistry(b)
	t, _ := reg.Get("bench")
	war := Artifact{Path: "app.war"}
	r := &run{t: t, params: map[string]any{"service": "A", "artifact": war}, artifacts: map[string]Artifact{war.String(): war}, target: nopTarget{}, logger: slog.New(slog.DiscardHandler), ctx: context.Background(), stepCtx: context.Background()}
	defer r.close()
	inst := Instance{Server: "s", Service: "A", Name: "a1"}
	b.ReportAllocs()
	for b.Loop() {
		ir := InstanceReport{Instance: inst}
		r.runInstance(&ir)
		if ir.Result != ResultOK {
			b.Fatal(ir.Error)
		}
	}
}

// BenchmarkRun500 runs 500 instances × 4 no-op steps in batches of 50: all
// of its time is engine overhead (target: ≤ 100 ms).
func BenchmarkRun500(b *testing.B) {
	reg := benchRegistry(b)
	insts := make([]Instance, 500)
	for i := range insts {
		insts[i] = Instance{Server: "s", Service: "A", Name: fmt.Sprintf("a%d", i)}
	}
	war := filepath.Join(b.TempDir(), "app.war")
	if err := os.WriteFile(war, []byte("PK"), 0o644); err != nil {
		b.Fatal(err)
	}
	tmpl, _ := reg.Get("bench")
	params, err := tmpl.ParseParams(map[string]string{"service": "A", "artifact": war})
	if err != nil {
		b.Fatal(err)
	}
	batch, _ := ParseBatch("50")
	b.ReportAllocs()
	for b.Loop() {
		rep, err := tmpl.Run(context.Background(), params, Options{
			Servers: []string{"s"}, Batch: batch, Target: nopTarget{insts: insts},
		})
		if err != nil || rep.ExitCode != 0 {
			b.Fatal(err, rep)
		}
	}
}
