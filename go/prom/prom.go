// Package prom exposes the metrics of litepool pools to Prometheus through client_golang: a
// prometheus.Collector built on the core's metric list, so a metric the core gains shows up
// without a change here.
//
// It is a module of its own so that the litepool module does not depend on client_golang.
//
//	pool, _ := litepool.Open("file:app.db") // joins the pool a *sql.DB of that file uses
//	prometheus.MustRegister(prom.New(pool))
//	http.Handle("/metrics", promhttp.Handler())
package prom

import (
	"fmt"
	"strings"
	"sync"

	litepool "github.com/litepool/litepool/go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Collector collects the metrics of its pools at each scrape: every metric of a pool's Stats,
// named litepool_<name>, of the core's type (counter or gauge), labelled with the database
// path and the metric's own labels. Closed pools are skipped.
//
// It is an unchecked collector (Describe sends nothing): the metrics are those of the core
// the program links, not a list fixed here.
type Collector struct {
	mu    sync.Mutex
	pools []*litepool.Pool
}

// New returns a Collector of pools.
func New(pools ...*litepool.Pool) *Collector {
	return &Collector{pools: append([]*litepool.Pool(nil), pools...)}
}

// Add makes the collector report pool too.
func (c *Collector) Add(pool *litepool.Pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pools = append(c.pools, pool)
}

// Remove stops reporting pool.
func (c *Collector) Remove(pool *litepool.Pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pools {
		if p == pool {
			c.pools = append(c.pools[:i], c.pools[i+1:]...)
			return
		}
	}
}

// Describe sends nothing: Collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends every metric of every open pool.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	pools := append([]*litepool.Pool(nil), c.pools...)
	c.mu.Unlock()
	descs := map[string]*prometheus.Desc{}
	for _, pool := range pools {
		stats, err := pool.Stats()
		if err != nil {
			continue // closed since it was added
		}
		families, err := parse(stats.Prometheus)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
			continue
		}
		for _, family := range families {
			collectFamily(ch, descs, family)
		}
	}
}

// parse reads the core's Prometheus text, which carries each metric's labels (the metric list
// of Stats has names, kinds and values only).
func parse(text string) ([]*dto.MetricFamily, error) {
	parser := expfmt.TextParser{}
	byName, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("litepool stats: %w", err)
	}
	// In the core's order, which TextToMetricFamilies' map lost.
	families := make([]*dto.MetricFamily, 0, len(byName))
	for _, line := range strings.Split(text, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			if f := byName[name]; f != nil {
				families = append(families, f)
			}
		}
	}
	return families, nil
}

func collectFamily(ch chan<- prometheus.Metric, descs map[string]*prometheus.Desc, family *dto.MetricFamily) {
	valueType := prometheus.GaugeValue
	if family.GetType() == dto.MetricType_COUNTER {
		valueType = prometheus.CounterValue
	}
	for _, m := range family.Metric {
		names := make([]string, len(m.Label))
		values := make([]string, len(m.Label))
		for i, l := range m.Label {
			names[i], values[i] = l.GetName(), l.GetValue()
		}
		key := family.GetName() + "\xff" + strings.Join(names, "\xff")
		desc := descs[key]
		if desc == nil {
			desc = prometheus.NewDesc(family.GetName(), family.GetHelp(), names, nil)
			descs[key] = desc
		}
		value := m.GetGauge().GetValue()
		if valueType == prometheus.CounterValue {
			value = m.GetCounter().GetValue()
		}
		ch <- prometheus.MustNewConstMetric(desc, valueType, value, values...)
	}
}
