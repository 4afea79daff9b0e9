package mocking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"

	"gateway/config"
)

// Schema is response_schema: the JSON schema of the body to generate
// (APISIX: types string, number, integer, boolean, object with
// properties, array with items; a base type's example is its value).
type Schema struct {
	Type       string             `json:"type"`
	Properties map[string]*Schema `json:"properties"`
	Items      *Schema            `json:"items"`
	Example    config.Raw         `json:"example"`

	// Annotations and constraints a schema often carries; the generator
	// does not read them.
	Schema               config.Ignored `json:"$schema"`
	Title                config.Ignored `json:"title"`
	Description          config.Ignored `json:"description"`
	Required             config.Ignored `json:"required"`
	Format               config.Ignored `json:"format"`
	AdditionalProperties config.Ignored `json:"additionalProperties"`
}

// MaxSchemaDepth bounds how deeply schemas nest.
const MaxSchemaDepth = 32

func (s *Schema) validate(ch *config.Check, depth int) {
	if depth > MaxSchemaDepth {
		ch.Errorf("nests deeper than %d levels", MaxSchemaDepth)
		return
	}
	ch.Field("type").OneOf(s.Type, "string", "number", "integer", "boolean", "object", "array")
	if len(s.Properties) > 0 && s.Type != "object" {
		ch.Field("properties").Errorf(`is only used with type "object"`)
	}
	if s.Items != nil && s.Type != "array" {
		ch.Field("items").Errorf(`is only used with type "array"`)
	}
	if s.Type == "array" && s.Items == nil {
		ch.Field("items").Errorf(`is required with type "array"`)
	}
	if s.Example != nil {
		var v any
		d := json.NewDecoder(bytes.NewReader(s.Example))
		d.UseNumber()
		_ = d.Decode(&v)
		ok := false
		switch s.Type {
		case "string":
			_, ok = v.(string)
		case "number", "integer":
			_, ok = v.(json.Number)
		case "boolean":
			_, ok = v.(bool)
		}
		if !ok {
			ch.Field("example").Errorf("must be a JSON %s (objects and arrays are generated from properties and items)", s.Type)
		}
	}
	for _, name := range sortedNames(s.Properties) {
		p := s.Properties[name]
		if p == nil {
			ch.Field("properties").Field(name).Errorf("must be a schema object")
			continue
		}
		p.validate(ch.Field("properties").Field(name), depth+1)
	}
	if s.Items != nil {
		s.Items.validate(ch.Field("items"), depth+1)
	}
}

func sortedNames(m map[string]*Schema) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Generate renders an example body for s: a base type's example when it
// has one, else a random value (strings of 1..10 letters and digits,
// integers and numbers in 0..1000, arrays of 1..3 items), as APISIX's
// mocking does per request. Here it is drawn once, at load, from a
// generator seeded with the schema itself, so the same schema always
// gives the same body.
func (s *Schema) Generate() []byte {
	seed, _ := json.Marshal(s)
	h := fnv.New64a()
	h.Write(seed)
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x6d6f636b))
	return s.appendValue(nil, rng)
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func (s *Schema) appendValue(b []byte, rng *rand.Rand) []byte {
	switch s.Type {
	case "object":
		b = append(b, '{')
		for i, name := range sortedNames(s.Properties) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, name)
			b = append(b, ':')
			b = s.Properties[name].appendValue(b, rng)
		}
		return append(b, '}')
	case "array":
		b = append(b, '[')
		for i := range 1 + rng.IntN(3) {
			if i > 0 {
				b = append(b, ',')
			}
			b = s.Items.appendValue(b, rng)
		}
		return append(b, ']')
	}
	if s.Example != nil {
		if s.Type == "integer" {
			// APISIX: an integer's example is truncated (155.55 -> 155).
			f, err := strconv.ParseFloat(string(s.Example), 64)
			if err == nil {
				return strconv.AppendInt(b, int64(f), 10)
			}
		}
		return append(b, s.Example...)
	}
	switch s.Type {
	case "string":
		n := 1 + rng.IntN(10)
		b = append(b, '"')
		for range n {
			b = append(b, alnum[rng.IntN(len(alnum))])
		}
		return append(b, '"')
	case "integer":
		return strconv.AppendInt(b, rng.Int64N(1001), 10)
	case "number":
		return strconv.AppendFloat(b, float64(rng.IntN(100001))/100, 'f', -1, 64)
	case "boolean":
		return strconv.AppendBool(b, rng.IntN(2) == 1)
	}
	panic(fmt.Sprintf("mocking: unvalidated schema type %q", s.Type))
}
