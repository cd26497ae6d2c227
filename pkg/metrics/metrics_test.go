package metrics

import (
	"slices"
	"strings"
	"testing"
)

func TestNamesMatchRegistry(t *testing.T) {
	m := New("order-service")
	m.Consumed.WithLabelValues("t", "g").Inc()
	m.Failed.WithLabelValues("t", "g", "E").Inc()
	m.DeadLettered.WithLabelValues("t", "g", "E").Inc()
	m.Orders.WithLabelValues("PENDING").Set(1)
	m.HTTPRequests.WithLabelValues("GET", "/x", "200").Inc()
	m.HTTPDuration.WithLabelValues("GET", "/x").Observe(0.1)
	m.BusinessErrors.WithLabelValues("X").Inc()
	m.BusinessOutcomes.WithLabelValues("payment_declined").Inc()
	m.Compensations.WithLabelValues("stock_restored").Inc()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "saga_") {
			got = append(got, f.GetName())
			for _, mm := range f.GetMetric() {
				if mm.GetLabel()[len(mm.GetLabel())-1].GetName() == "" {
					t.Fatal("unnamed label")
				}
			}
		}
	}
	names := Names()
	for _, g := range got {
		if !slices.Contains(names, g) && !slices.Contains(names, g+"_count") {
			t.Errorf("registered %s is not in Names()", g)
		}
	}
	if len(got) != 13 {
		t.Errorf("registered %d saga_ families, want 13: %v", len(got), got)
	}
}
