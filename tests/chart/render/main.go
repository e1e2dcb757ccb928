// render: renders a Helm chart's templates with Go's text/template and sprig, the way
// Helm's engine does (include, tpl, required, fail, toYaml, fromYaml, toJson,
// missingkey=zero), so CI can check the chart without helm (which Debian does not
// package). Every rendered document must parse as YAML and carry apiVersion, kind and
// metadata.name. A test aid, not a Helm replacement: tests/chart/render_chart.sh.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v2"
)

func norm(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = norm(x)
		}
		return m
	case map[string]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[k] = norm(x)
		}
		return m
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, x := range t {
			out[i] = norm(x)
		}
		return out
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case uint64:
		return float64(t)
	}
	return v
}

func readYAML(path string) map[string]interface{} {
	b, err := ioutil.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var v interface{}
	if err := yaml.Unmarshal(b, &v); err != nil {
		fmt.Fprintln(os.Stderr, path, err)
		os.Exit(2)
	}
	if v == nil {
		return map[string]interface{}{}
	}
	return norm(v).(map[string]interface{})
}

func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func setPath(m map[string]interface{}, path string, val interface{}) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = val
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	var valueFiles, sets multi
	kube := flag.String("kube-version", "v1.30.0", "")
	ns := flag.String("namespace", "ipguard-system", "")
	name := flag.String("name", "ipguard", "")
	flag.Var(&valueFiles, "f", "values file")
	flag.Var(&sets, "set", "key=value (YAML value)")
	flag.Parse()
	chartDir := flag.Arg(0)

	chart := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	values := readYAML(filepath.Join(chartDir, "values.yaml"))
	for _, f := range valueFiles {
		merge(values, readYAML(f))
	}
	for _, s := range sets {
		kv := strings.SplitN(s, "=", 2)
		var v interface{}
		yaml.Unmarshal([]byte(kv[1]), &v)
		setPath(values, kv[0], norm(v))
	}
	kv := strings.TrimPrefix(*kube, "v")
	parts := strings.Split(kv, ".")
	top := map[string]interface{}{
		"Values": values,
		"Chart": map[string]interface{}{
			"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"],
			"KubeVersion": chart["kubeVersion"],
		},
		"Release": map[string]interface{}{
			"Name": *name, "Namespace": *ns, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v" + kv, "Major": parts[0], "Minor": parts[1], "GitVersion": "v" + kv},
		},
		"Template": map[string]interface{}{"BasePath": "ipguard/templates"},
	}

	t := template.New("gotpl").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includedNames := map[string]int{}
	funcs["include"] = func(n string, data interface{}) (string, error) {
		includedNames[n]++
		if includedNames[n] > 1000 {
			return "", fmt.Errorf("recursion in %s", n)
		}
		var buf bytes.Buffer
		err := t.ExecuteTemplate(&buf, n, data)
		includedNames[n]--
		return buf.String(), err
	}
	funcs["tpl"] = func(s string, data interface{}) (string, error) {
		tt, err := t.Clone()
		if err != nil {
			return "", err
		}
		tt, err = tt.New("tpl").Parse(s)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = tt.Execute(&buf, data)
		return buf.String(), err
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, fmt.Errorf(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, fmt.Errorf(msg)
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", fmt.Errorf(msg) }
	funcs["toYaml"] = func(v interface{}) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		var v interface{}
		if err := yaml.Unmarshal([]byte(s), &v); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		if v == nil {
			return map[string]interface{}{}
		}
		return norm(v).(map[string]interface{})
	}
	funcs["toJson"] = func(v interface{}) string { b, _ := json.Marshal(v); return string(b) }
	funcs["lookup"] = func(...interface{}) map[string]interface{} { return map[string]interface{}{} }
	t.Funcs(funcs)

	tdir := filepath.Join(chartDir, "templates")
	files, _ := filepath.Glob(filepath.Join(tdir, "*"))
	sort.Strings(files)
	var names []string
	for _, f := range files {
		b, _ := ioutil.ReadFile(f)
		n := "ipguard/templates/" + filepath.Base(f)
		if _, err := t.New(n).Parse(string(b)); err != nil {
			fmt.Fprintln(os.Stderr, "parse:", err)
			os.Exit(1)
		}
		names = append(names, n)
	}
	failed := false
	for _, n := range names {
		base := filepath.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": n, "BasePath": "ipguard/templates"}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, n, data); err != nil {
			fmt.Fprintln(os.Stderr, "render:", err)
			failed = true
			continue
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(out) == "" {
			continue
		}
		if base == "NOTES.txt" {
			fmt.Fprintf(os.Stderr, "---- NOTES ----\n%s\n", out)
			continue
		}
		for i, doc := range strings.Split(out, "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var v map[string]interface{}
			if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
				fmt.Fprintf(os.Stderr, "%s document %d is not YAML: %v\n", n, i+1, err)
				failed = true
				continue
			}
			if v == nil {
				continue // only comments
			}
			meta, _ := norm(v["metadata"]).(map[string]interface{})
			if v["apiVersion"] == nil || v["kind"] == nil || meta == nil || meta["name"] == nil || meta["name"] == "" {
				fmt.Fprintf(os.Stderr, "%s document %d lacks apiVersion, kind or metadata.name\n", n, i+1)
				failed = true
			}
		}
		fmt.Printf("---\n# Source: %s\n%s\n", n, out)
	}
	if failed {
		os.Exit(1)
	}
}
