package router

import "gateway/config"

// Conds are vars conditions compiled for use outside routing (plugins
// such as traffic-split): Match holds when every condition holds.
type Conds struct {
	c     []cond
	names [][]byte // the name each condition asks VarSource for
}

// CompileConds compiles vars whose Ref was set (config.Check.Var).
func CompileConds(vars []config.Var) (*Conds, error) {
	c, err := compileVars(vars)
	if err != nil {
		return nil, err
	}
	cs := &Conds{c: c, names: make([][]byte, len(c))}
	for i := range c {
		cs.names[i] = c[i].arg
		if c[i].kind == VarPath {
			cs.names[i] = []byte(c[i].pname)
		}
	}
	return cs, nil
}

// Match reports whether every condition holds for the request src reads
// (every variable, the URI, host, method and path parameters included).
func (cs *Conds) Match(src VarSource) bool {
	for i := range cs.c {
		v := src.Var(cs.c[i].kind, cs.names[i])
		if !cs.c[i].holds(v, v == nil) {
			return false
		}
	}
	return true
}

// Len is the number of conditions.
func (cs *Conds) Len() int { return len(cs.c) }

// Holds reports whether condition i holds for value v (nil: the variable
// is missing), for a caller that reads the variables itself
// (response-rewrite's response variables).
func (cs *Conds) Holds(i int, v []byte) bool { return cs.c[i].holds(v, v == nil) }
