package testcert

import "encoding/json"

// ConfigJSON is a gateway config as JSON: one service in front of one
// node, plus the top-level keys of extra (certificates, snis, gateway,
// ...). JSON takes PEM as it is, which YAML would need indenting for.
func ConfigJSON(extra map[string]any) []byte {
	doc := map[string]any{
		"services": []any{map[string]any{
			"id": "s", "upstream": map[string]any{"nodes": []any{map[string]any{"host": "10.0.0.1", "port": 80}}},
			"routes": []any{map[string]any{"paths": []any{"/"}}},
		}},
	}
	for k, v := range extra {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// Object is p as a certificates[] entry with id and inline PEM.
func (p *Pair) Object(id string) map[string]any {
	return map[string]any{"id": id, "cert": string(p.CertPEM), "key": string(p.KeyPEM)}
}
