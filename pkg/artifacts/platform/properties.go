package platform

import (
	"bufio"
	"fmt"
	"strings"
)

// ParseProperties parses Kafka's server.properties format as MSK configurations use it:
// one key=value per line, blank lines and # or ! comments ignored. A line without '=' or a key
// given twice is an error naming the line, since the broker would take only one of the values.
func ParseProperties(text string) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("properties line %d: %q is not key=value", line, l)
		}
		if _, dup := props[k]; dup {
			return nil, fmt.Errorf("properties line %d: %s is set twice", line, k)
		}
		props[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read properties: %w", err)
	}
	return props, nil
}
