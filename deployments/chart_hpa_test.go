package deployments_test

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// detectAutoscaling renders the chart with the split roles (split) and the
// detect autoscaler's values over the defaults (hpa), and returns the
// manifests.
func detectAutoscaling(t *testing.T, split bool, hpa map[string]any) []manifest {
	t.Helper()
	detect := map[string]any{"replicas": 3}
	if hpa != nil {
		detect["autoscaling"] = hpa
	}
	return render(t, map[string]any{"roles": map[string]any{"split": split, "detect": detect}})
}

// TestChartDetectAutoscaling checks the detect role's
// HorizontalPodAutoscaler: rendered only with roles.split (and
// autoscaling.enabled), a valid autoscaling/v2 object whose target is the
// detect Deployment the same render holds, scaling on the Pods metric the
// shipped prometheus-adapter rule serves, with the values' bounds and
// target; the detect Deployment then leaves its replica count to it.
func TestChartDetectAutoscaling(t *testing.T) {
	ms := detectAutoscaling(t, true, map[string]any{"minReplicas": 2, "maxReplicas": 6, "targetLagPerPod": 5000})
	hpas := byKind(ms, "HorizontalPodAutoscaler")
	if len(hpas) != 1 {
		t.Fatalf("got %d HorizontalPodAutoscalers, want 1", len(hpas))
	}
	h := hpas[0]
	if v := str(h.obj["apiVersion"]); v != "autoscaling/v2" {
		t.Errorf("apiVersion %q, want autoscaling/v2", v)
	}
	// The reference resolves: a Deployment of that name in this render,
	// the detect role's.
	target := str(dig(h.obj, "spec", "scaleTargetRef", "name"))
	var detect *manifest
	for _, d := range byKind(ms, "Deployment") {
		if d.name() == target && str(dig(h.obj, "spec", "scaleTargetRef", "kind")) == "Deployment" &&
			str(dig(h.obj, "spec", "scaleTargetRef", "apiVersion")) == "apps/v1" {
			detect = &d
		}
	}
	if detect == nil || target != "musubi-detect" {
		t.Fatalf("scaleTargetRef %v resolves to no Deployment of the render; want apps/v1 Deployment musubi-detect", dig(h.obj, "spec", "scaleTargetRef"))
	}
	if comp := dig(detect.obj, "spec", "template", "metadata", "labels", "app.kubernetes.io/component"); comp != "detect" {
		t.Errorf("the scaled Deployment's pods are component %v, want detect", comp)
	}
	if r, ok := dig(detect.obj, "spec").(map[string]any)["replicas"]; ok {
		t.Errorf("detect Deployment sets replicas %v; with the autoscaler it must leave them to it (a helm upgrade would reset them)", r)
	}
	for _, d := range byKind(ms, "Deployment") {
		if d.name() != "musubi-detect" && dig(d.obj, "spec", "replicas") == nil {
			t.Errorf("%s lost its replica count", d.name())
		}
	}
	if lo, hi := dig(h.obj, "spec", "minReplicas"), dig(h.obj, "spec", "maxReplicas"); lo != 2 || hi != 6 {
		t.Errorf("replicas %v..%v, want 2..6", lo, hi)
	}
	metrics, _ := dig(h.obj, "spec", "metrics").([]any)
	if len(metrics) != 1 || dig(metrics[0], "type") != "Pods" {
		t.Fatalf("metrics %v, want one Pods metric", metrics)
	}
	name := str(dig(metrics[0], "pods", "metric", "name"))
	if tt, v := dig(metrics[0], "pods", "target", "type"), str(dig(metrics[0], "pods", "target", "averageValue")); tt != "AverageValue" || v != "5000" {
		t.Errorf("target %v %q, want AverageValue 5000", tt, v)
	}
	// The metric is what the shipped adapter rule serves, from the series
	// the engine exports.
	var adapter struct {
		Rules []struct {
			SeriesQuery string `yaml:"seriesQuery"`
			Resources   struct {
				Overrides map[string]struct {
					Resource string `yaml:"resource"`
				} `yaml:"overrides"`
			} `yaml:"resources"`
			Name struct {
				As string `yaml:"as"`
			} `yaml:"name"`
			MetricsQuery string `yaml:"metricsQuery"`
		} `yaml:"rules"`
	}
	data, err := os.ReadFile("prometheus/adapter-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &adapter); err != nil {
		t.Fatal(err)
	}
	served := false
	for _, r := range adapter.Rules {
		if r.Name.As == name && strings.HasPrefix(r.SeriesQuery, "musubi_kafka_consumer_lag{") &&
			r.Resources.Overrides["pod"].Resource == "pod" && r.Resources.Overrides["namespace"].Resource == "namespace" &&
			strings.Contains(r.MetricsQuery, "sum(") {
			served = true
		}
	}
	if !served {
		t.Errorf("no rule of prometheus/adapter-rules.yaml serves %q per pod from musubi_kafka_consumer_lag", name)
	}
	doc, err := os.ReadFile("../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "deployments/prometheus/adapter-rules.yaml") {
		t.Error("docs/deploy.md does not point at the prometheus-adapter rule the autoscaler assumes")
	}

	// Only in split mode, and only when enabled.
	for _, tc := range []struct {
		name  string
		split bool
		hpa   map[string]any
	}{
		{"one process (roles.split false)", false, nil},
		{"autoscaling disabled", true, map[string]any{"enabled": false}},
	} {
		ms := detectAutoscaling(t, tc.split, tc.hpa)
		if n := len(byKind(ms, "HorizontalPodAutoscaler")); n != 0 {
			t.Errorf("%s: %d HorizontalPodAutoscalers, want none", tc.name, n)
		}
		for _, d := range byKind(ms, "Deployment") {
			if d.name() == "musubi-detect" && dig(d.obj, "spec", "replicas") != 3 {
				t.Errorf("%s: detect replicas %v, want roles.detect.replicas 3", tc.name, dig(d.obj, "spec", "replicas"))
			}
		}
	}

	// Bounds the wrong way round are refused at render time.
	_, err = renderChart(t, map[string]any{"roles": map[string]any{"split": true, "detect": map[string]any{"autoscaling": map[string]any{"minReplicas": 5, "maxReplicas": 2}}}}, true)
	if err == nil || !strings.Contains(err.Error(), "minReplicas is above maxReplicas") {
		t.Errorf("got %v, want the render refused: minReplicas is above maxReplicas", err)
	}
}
