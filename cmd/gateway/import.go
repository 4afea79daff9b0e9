package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"gateway/importer"
)

// cmdImport is `gateway import api7|huawei PATH...`: it converts the JSON
// the products' APIs return into this gateway's config, printed as YAML on
// stdout; what it could not convert goes to stderr as warnings naming the
// source path. The documented migration is
// `gateway import ... > gw.yaml && gateway validate -c gw.yaml`.
func cmdImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the config to `FILE` instead of stdout")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  gateway import api7 [-o FILE] DIR|FILE...    API7 Admin API list/get responses (JSON)
  gateway import huawei [-o FILE] DIR|FILE...  Huawei APIG API list/detail responses (JSON)
`)
	}
	if len(args) == 0 {
		fs.Usage()
		return exitUsage
	}
	product := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "gateway import: no input files")
		fs.Usage()
		return exitUsage
	}
	var res *importer.Result
	var err error
	switch product {
	case "api7":
		res, err = importer.API7(fs.Args())
	case "huawei":
		res, err = importer.Huawei(fs.Args())
	default:
		fmt.Fprintf(stderr, "gateway import: unknown product %q (api7 or huawei)\n", product)
		fs.Usage()
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "gateway import: %v\n", err)
		return exitConfig
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if *out != "" {
		if err := os.WriteFile(*out, res.YAML, 0o644); err != nil {
			fmt.Fprintf(stderr, "gateway import: %v\n", err)
			return exitConfig
		}
		return exitOK
	}
	if _, err := stdout.Write(res.YAML); err != nil {
		return exitConfig
	}
	return exitOK
}
