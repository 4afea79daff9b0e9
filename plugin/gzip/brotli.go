package gzip

import (
	"sync"

	brrr "github.com/molecule-man/go-brrr"

	"gateway/config"
	"gateway/plugin"
)

// BrotliName is APISIX's brotli plugin.
const BrotliName = "brotli"

// BrotliPriority: APISIX's 996, before gzip (995): when a client accepts
// both, brotli compresses and gzip then leaves the encoded body alone.
const BrotliPriority = 996

func init() {
	plugin.Register(config.PluginDef{Name: BrotliName, Priority: BrotliPriority, Route: func() any { return &BrotliConfig{} }}, compileBrotli)
}

// BrotliConfig is the brotli plugin's config (APISIX's keys).
type BrotliConfig struct {
	Types     []string `json:"types"`      // media types; ["*"]: all
	MinLength int64    `json:"min_length"` // bytes
	CompLevel int64    `json:"comp_level"` // 0..11
	Mode      int64    `json:"mode"`       // 0 (generic) only
	LGWin     int64    `json:"lgwin"`      // 0 (the encoder's default) or 10..24
	LGBlock   int64    `json:"lgblock"`    // 0 (automatic) only
}

// SetDefaults implements config.Defaulter (APISIX's defaults).
func (c *BrotliConfig) SetDefaults() {
	c.Types, c.MinLength, c.CompLevel, c.LGWin = []string{"text/html"}, 20, 6, 19
}

// Validate implements config.Validating.
func (c *BrotliConfig) Validate(ch *config.Check) {
	checkTypes(ch, c.Types)
	ch.Field("min_length").IntRange(c.MinLength, 1, 1<<31-1)
	ch.Field("comp_level").IntRange(c.CompLevel, 0, 11)
	if c.LGWin != 0 {
		ch.Field("lgwin").IntRange(c.LGWin, 10, 24)
	}
	if c.Mode != 0 {
		ch.Field("mode").Errorf("only 0 (generic) is supported: the encoder has no text or font mode")
	}
	if c.LGBlock != 0 {
		ch.Field("lgblock").Errorf("only 0 (automatic) is supported: the encoder chooses its block size")
	}
}

// brotliPools holds one writer pool per level and window, made on first
// use and shared by every route.
var (
	brotliMu    sync.Mutex
	brotliPools = map[[2]int]*writerPool{}
)

func brotliPool(level, lgwin int) *writerPool {
	brotliMu.Lock()
	defer brotliMu.Unlock()
	key := [2]int{level, lgwin}
	if p := brotliPools[key]; p != nil {
		return p
	}
	p := &writerPool{level: level, free: make(chan compressor, poolSize), newW: func() compressor {
		w, _ := brrr.NewWriterOptions(nil, level, brrr.WriterOptions{LGWin: lgwin})
		return w
	}}
	brotliPools[key] = p
	return p
}

func compileBrotli(conf any, _ *plugin.Env) (plugin.Step, error) {
	c := conf.(*BrotliConfig)
	return newStep(c.Types, c.MinLength, brotliPool(int(c.CompLevel), int(c.LGWin)), strBr, acceptsBrotli), nil
}
