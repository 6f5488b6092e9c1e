package prom

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	litepool "github.com/litepool/litepool/go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func openPool(t *testing.T, name string, rows int) *litepool.Pool {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	pool, err := litepool.Open("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rows; i++ {
		if _, err := pool.Exec(ctx, "INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// gather scrapes a registry holding only c: family name -> family.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// TestScrapeMatchesTheCoreList checks every family the collector exposes against the core's
// metric list (Stats.Metrics, read through the C ABI) and the core's own Prometheus text.
func TestScrapeMatchesTheCoreList(t *testing.T) {
	a := openPool(t, "a.db", 50)
	b := openPool(t, "b.db", 3)
	if _, err := a.Checkpoint(litepool.CheckpointTruncate); err != nil {
		t.Fatal(err)
	}
	c := New(a, b)
	stats, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 2*len(stats.Metrics) {
		t.Fatalf("collected %d metrics, want 2 x %d", n, len(stats.Metrics))
	}
	families := gather(t, c)
	kinds := map[string]dto.MetricType{}
	for _, m := range stats.Metrics {
		name := "litepool_" + strings.TrimPrefix(m.Name, "litepool_")
		want := dto.MetricType_GAUGE
		if m.Counter {
			want = dto.MetricType_COUNTER
		}
		kinds[name] = want
		f := families[name]
		if f == nil {
			t.Fatalf("metric %s of the core's list is not exposed", name)
		}
		if f.GetType() != want || f.GetHelp() != m.Help {
			t.Errorf("%s: type %v help %q, want %v %q", name, f.GetType(), f.GetHelp(), want, m.Help)
		}
	}
	if len(kinds) != len(families) {
		t.Errorf("%d families exposed, the core lists %d names", len(families), len(kinds))
	}
	// The label sets are the core's: compare with its own Prometheus text, pool by pool.
	core, err := parse(stats.Prometheus)
	if err != nil {
		t.Fatal(err)
	}
	for _, cf := range core {
		var got, want []string
		for _, m := range families[cf.GetName()].Metric {
			if labels(m)["path"] == labels(cf.Metric[0])["path"] {
				got = append(got, fmt.Sprint(labels(m)))
			}
		}
		for _, m := range cf.Metric {
			want = append(want, fmt.Sprint(labels(m)))
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: label sets %v, the core has %v", cf.GetName(), got, want)
		}
	}
	// The values are the core's: its checkpoint counters (which do not move between the two
	// reads) in its own text, labels in client_golang's order, against a scrape.
	var expected strings.Builder
	truncated := 0.0
	for _, cf := range core {
		if cf.GetName() != "litepool_checkpoints_total" {
			continue
		}
		for _, m := range cf.Metric {
			slices.SortFunc(m.Label, func(x, y *dto.LabelPair) int { return strings.Compare(x.GetName(), y.GetName()) })
			if l := labels(m); l["mode"] == "truncate" && l["result"] == "ok" {
				truncated = m.GetCounter().GetValue()
			}
		}
		if _, err := expfmt.MetricFamilyToText(&expected, cf); err != nil {
			t.Fatal(err)
		}
	}
	if truncated != 1 {
		t.Fatalf("the core counted %v complete TRUNCATE checkpoints, want 1", truncated)
	}
	only := New(a)
	if err := testutil.CollectAndCompare(only, strings.NewReader(expected.String()), "litepool_checkpoints_total"); err != nil {
		t.Fatal(err)
	}
}

func TestClosedAndRemovedPoolsAreSkipped(t *testing.T) {
	a := openPool(t, "a.db", 1)
	b := openPool(t, "b.db", 1)
	c := New(a)
	c.Add(b)
	stats, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	per := len(stats.Metrics)
	if n := testutil.CollectAndCount(c); n != 2*per {
		t.Fatalf("collected %d, want %d", n, 2*per)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != per {
		t.Fatalf("after closing b: collected %d, want %d", n, per)
	}
	c.Remove(a)
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Fatalf("after removing a: collected %d, want 0", n)
	}
}

// TestLint runs client_golang's linter (naming and type conventions) on a scrape.
func TestLint(t *testing.T) {
	c := New(openPool(t, "a.db", 1))
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
