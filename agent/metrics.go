package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are what /metrics exports.
type metrics struct {
	reg           *prometheus.Registry
	steps         *prometheus.CounterVec
	stepSeconds   *prometheus.HistogramVec
	uploadBytes   prometheus.Counter
	healthSeconds prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baepo_agent_steps_total", Help: "Steps run, by step and result.",
		}, []string{"step", "result"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "baepo_agent_step_duration_seconds", Help: "How long steps took.",
			Buckets: []float64{.001, .01, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"step"}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baepo_agent_upload_bytes_total", Help: "Artifact bytes received (uploads and downloads).",
		}),
		healthSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "baepo_agent_health_check_seconds", Help: "Latency of single health probes.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
	}
	m.reg.MustRegister(m.steps, m.stepSeconds, m.uploadBytes, m.healthSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
