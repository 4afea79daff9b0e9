package config

// MockingPlugin is the name of the plugin that answers a route itself
// (plugin/mocking): a service whose every route has it needs no upstream.
const MockingPlugin = "mocking"

// allMocked reports whether every route of s has the mocking plugin in
// effect (on the route, the service or global_plugins).
func (v *validator) allMocked(s *Service) bool {
	if _, ok := v.cfg.GlobalPlugins[MockingPlugin]; ok {
		return true
	}
	if _, ok := s.Plugins[MockingPlugin]; ok {
		return true
	}
	for i := range s.Routes {
		if _, ok := s.Routes[i].Plugins[MockingPlugin]; !ok {
			return false
		}
	}
	return len(s.Routes) > 0
}
