// SPDX-License-Identifier: MIT
// The sections of the configuration and the checks across keys (see config.cpp for the
// walker and docs/configuration.md for what each key accepts).
#include <algorithm>
#include <cctype>
#include <sstream>

#include "policy/catalog.h"
#include "policy/config_parser.h"
#include "policy/name_pattern.h"

namespace amlfw::config_internal {

void ConfigParser::parse_catalog(const toml::node& n, const std::string& path) {
  const std::string* s = string_of(n, path, "\"2021-10\"");
  if (s == nullptr) return;
  const std::vector<std::string> revisions = catalog_revisions();
  if (std::find(revisions.begin(), revisions.end(), *s) == revisions.end()) {
    const std::string close = suggest(*s, revisions);
    fail(n, path,
         quote(*s) + " is not a catalog revision (" +
             (close.empty() ? "use " + join(revisions, " or ") : "did you mean '" + close + "'?") + ")");
    return;
  }
  cfg_.catalog = *s;
}

// Storage account names (3-24 lower-case letters and digits) and registry names (5-50
// letters and digits, kept in lower case as host names are). Duplicates are dropped.
void ConfigParser::parse_names(const toml::node& n, const std::string& path, std::vector<std::string>* out,
                               size_t lo, size_t hi, bool lower_only, std::string_view suffix,
                               std::string_view example) {
  out->clear();
  strings_of(n, path, example, [&](const toml::node& el, const std::string& s) {
    bool ok = s.size() >= lo && s.size() <= hi;
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      ok = ok && (std::islower(u) || std::isdigit(u) || (!lower_only && std::isupper(u)));
    }
    if (ok) {
      const std::string name = to_lower(s);
      if (std::find(out->begin(), out->end(), name) == out->end()) out->push_back(name);
      return;
    }
    const bool alnum = std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
    std::string fix;
    if (s.find('.') != std::string::npos) {
      fix = "give the name only, without '" + std::string(suffix) + "'";
    } else if (lower_only && alnum && s.size() >= lo && s.size() <= hi) {
      fix = "write it in lower case";
    } else {
      fix = "use " + std::to_string(lo) + " to " + std::to_string(hi) +
            (lower_only ? " lower-case letters and digits" : " letters and digits") + ", e.g. " +
            std::string(example);
    }
    fail(el, path, quote(s) + " is not a valid name (" + fix + ")");
  });
}

void ConfigParser::parse_features(const toml::node& n, const std::string& path) {
  std::vector<Key> keys;
  for (const auto& [name, _] : kFeatureDefaults) keys.push_back({name, bool_key(&cfg_.features[name])});
  walk(n, path, keys, "[features]");
}

void ConfigParser::parse_inbound(const toml::node& n, const std::string& path) {
  auto ssh_from = [this](const toml::node& a, const std::string& p) {
    cfg_.inbound.ssh_from.clear();
    strings_of(a, p, "\"198.51.100.0/24\"", [&](const toml::node& el, const std::string& s) {
      auto pfx = Prefix::parse(s, true);
      if (!pfx) {
        fail(el, p, with_fix(pfx.error().message, "write a CIDR such as \"198.51.100.0/24\""));
        return;
      }
      cfg_.inbound.ssh_from.push_back(pfx->str());
    });
  };
  walk(n, path, {{"enforce", bool_key(&cfg_.inbound.enforce)}, {"ssh_from", ssh_from}}, "[inbound]");
}

void ConfigParser::parse_service_tags(const toml::node& n, const std::string& path) {
  auto& st = cfg_.service_tags;
  auto source = [this, &st](const toml::node& v, const std::string& p) {
    const std::string* s = string_of(v, p, "\"/var/lib/amlfw/ServiceTags_Public.json\"");
    if (s == nullptr) return;
    const bool url = s->rfind("https://", 0) == 0 && s->size() > 8 &&
                     std::none_of(s->begin(), s->end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20; });
    if (*s == "azure-api" || url || (is_clean_absolute_path(*s) && s->back() != '/')) {
      st.source = *s;
    } else if (s->rfind("http://", 0) == 0) {
      fail(v, p, quote(*s) + " is not https (use an https:// URL)");
    } else {
      fail(v, p, quote(*s) + " is not a source (write an absolute file path, an https:// URL or \"azure-api\")");
    }
  };
  auto refresh = [this, &st](const toml::node& v, const std::string& p) {
    if (auto d = duration_of(v, p, 60, 30 * 86400, "\"24h\"")) st.refresh_s = *d;
  };
  auto max_shrink = [this, &st](const toml::node& v, const std::string& p) {
    double x = 0;
    if (const auto* f = v.as_floating_point()) {
      x = f->get();
    } else if (const auto* i = v.as_integer()) {
      x = static_cast<double>(i->get());
    } else {
      fail(v, p, "expected a number, found " + std::string(type_name(v)) + " (write max_shrink = 0.1)");
      return;
    }
    if (!(x >= 0.0 && x <= 1.0)) {
      std::ostringstream text;
      text << x;
      fail(v, p, text.str() + " is out of range (use a share from 0.0 to 1.0, e.g. 0.1 for 10%)");
      return;
    }
    st.max_shrink = x;
  };
  walk(n, path,
       {{"source", source}, {"refresh", refresh}, {"max_shrink", max_shrink},
        {"subscription", guid_key(&st.subscription)}, {"client_id", guid_key(&st.client_id)}},
       "[service_tags]");
}

void ConfigParser::parse_dns(const toml::node& n, const std::string& path) {
  auto& d = cfg_.dns;
  auto upstreams = [this, &d](const toml::node& v, const std::string& p) {
    d.upstreams.clear();
    strings_of(v, p, "\"192.0.2.53\"", [&](const toml::node& el, const std::string& s) {
      auto a = parse_socket_address(s, 53);
      if (!a) {
        fail(el, p, quote(s) + ": " + a.error().message);
        return;
      }
      d.upstreams.push_back(s);
    });
  };
  auto min_ttl = [this, &d](const toml::node& v, const std::string& p) {
    min_ttl_node_ = &v;
    if (auto x = duration_of(v, p, 0, 86400, "\"60s\"")) d.min_ttl_s = *x;
  };
  auto max_ttl = [this, &d](const toml::node& v, const std::string& p) {
    max_ttl_node_ = &v;
    if (auto x = duration_of(v, p, 1, 7 * 86400, "\"1d\"")) d.max_ttl_s = *x;
  };
  auto grace = [this, &d](const toml::node& v, const std::string& p) {
    if (auto x = duration_of(v, p, 0, 7 * 86400, "\"15m\"")) d.grace_s = *x;
  };
  auto per_name = [this, &d](const toml::node& v, const std::string& p) {
    if (auto x = uint_of(v, p, 1, 4096, 64)) d.max_addresses_per_name = static_cast<uint32_t>(*x);
  };
  auto learned = [this, &d](const toml::node& v, const std::string& p) {
    if (auto x = uint_of(v, p, 1, uint64_t{1} << 24, 65536)) d.max_learned = static_cast<uint32_t>(*x);
  };
  walk(n, path,
       {{"listen",
         [this, &d](const toml::node& v, const std::string& p) {
           listen_node_ = &v;
           listen_key(&d.listen, false)(v, p);
         }},
        {"upstreams", upstreams},
        {"min_ttl", min_ttl},
        {"max_ttl", max_ttl},
        {"grace", grace},
        {"max_addresses_per_name", per_name},
        {"max_learned", learned},
        {"allow_private", bool_key(&d.allow_private)},
        {"redirect", bool_key(&d.redirect)}},
       "[dns]");
}

void ConfigParser::parse_ports(const toml::node& n, const std::string& path, std::vector<PortRange>* out) {
  constexpr std::string_view kFix = "write \"443\", \"80-90\" or \"*\"";
  const toml::array* a = n.as_array();
  if (a == nullptr) {
    fail(n, path, "expected an array, found " + std::string(type_name(n)) + " (write ports = [\"443\"])");
    return;
  }
  if (a->empty()) {
    fail(n, path, "no port listed (list ports such as [\"443\"], or remove the key for all ports)");
    return;
  }
  std::vector<PortRange> ports;
  for (const toml::node& el : *a) {
    if (const auto* i = el.as_integer()) {
      if (i->get() < 1 || i->get() > 65535) {
        fail(el, path, std::to_string(i->get()) + " is not a port (use 1 to 65535)");
        continue;
      }
      const auto port = static_cast<uint16_t>(i->get());
      ports.push_back(PortRange{port, port});
    } else if (const auto* s = el.as_string()) {
      auto r = parse_port_range(s->get());
      if (!r) {
        fail(el, path, with_fix(r.error().message, kFix));
        continue;
      }
      ports.push_back(*r);
    } else {
      fail(el, path, "expected a port, found " + std::string(type_name(el)) + " (" + std::string(kFix) + ")");
    }
  }
  *out = normalize_ports(std::move(ports));
}

void ConfigParser::parse_allow(const toml::node& n, const std::string& path) {
  const toml::array* a = n.as_array();
  if (a == nullptr) {
    fail(n, path,
         "expected an array of tables, found " + std::string(type_name(n)) +
             " (write each rule under its own [[allow]] header)");
    return;
  }
  for (const toml::node& el : *a) {
    if (el.as_table() == nullptr) {
      fail(el, path,
           "expected a table, found " + std::string(type_name(el)) +
               " (write each rule under its own [[allow]] header)");
      continue;
    }
    parse_allow_rule(el, path);
  }
}

void ConfigParser::parse_allow_rule(const toml::node& n, const std::string& path) {
  AllowRule rule;
  rule.where = place(n.source());
  std::vector<std::pair<const toml::node*, std::string>> destinations;  // node, key
  const toml::node* direction_node = nullptr;
  auto destination = [&](const toml::node& v, const std::string& p, std::string_view example) {
    destinations.emplace_back(&v, leaf(p));
    return string_of(v, p, example);
  };
  auto fqdn = [&](const toml::node& v, const std::string& p) {
    const std::string* s = destination(v, p, "\"*.example.com\"");
    if (s == nullptr) return;
    auto pattern = NamePattern::parse(*s);
    if (!pattern) {
      fail(v, p, with_fix(pattern.error().message, "write a host name such as \"*.example.com\""));
      return;
    }
    rule.fqdn = pattern->str();
  };
  auto cidr = [&](const toml::node& v, const std::string& p) {
    const std::string* s = destination(v, p, "\"198.51.100.0/24\"");
    if (s == nullptr) return;
    auto prefix = Prefix::parse(*s, true);
    if (!prefix) {
      fail(v, p, with_fix(prefix.error().message, "write a CIDR such as \"198.51.100.0/24\""));
      return;
    }
    rule.cidr = prefix->str();
  };
  auto service_tag = [&](const toml::node& v, const std::string& p) {
    const std::string* s = destination(v, p, "\"AzureCloud\"");
    if (s == nullptr) return;
    // Names of the data: letters and digits, dot-separated ("Storage.WestEurope").
    bool ok = !s->empty() && s->size() <= 128 && std::isalpha(static_cast<unsigned char>(s->front())) &&
              s->back() != '.' && s->find("..") == std::string::npos;
    for (char c : *s) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.');
    if (!ok) {
      fail(v, p,
           quote(*s) + " is not a service tag name (write a name of the service-tags data such as "
                       "\"AzureCloud\" or \"Storage.WestEurope\")");
      return;
    }
    rule.service_tag = *s;
  };
  auto proto = [&](const toml::node& v, const std::string& p) {
    const std::string* s = string_of(v, p, "\"tcp\"");
    if (s == nullptr) return;
    if (auto x = parse_proto(*s)) {
      rule.proto = *x;
    } else {
      fail(v, p, quote(*s) + " is not valid (use tcp, udp or any)");
    }
  };
  auto direction = [&](const toml::node& v, const std::string& p) {
    direction_node = &v;
    const std::string* s = string_of(v, p, "\"egress\"");
    if (s == nullptr) return;
    if (*s == "egress" || *s == "ingress") {
      rule.direction = *s;
    } else {
      fail(v, p, quote(*s) + " is not valid (use egress or ingress)");
    }
  };
  auto why = [&](const toml::node& v, const std::string& p) {
    const std::string* s = string_of(v, p, "\"CI pulls from GitHub\"");
    if (s == nullptr) return;
    if (std::any_of(s->begin(), s->end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
      fail(v, p, "line break or control character (write why on one line)");
      return;
    }
    rule.why = *s;
  };
  const size_t errors_before = errors_;
  walk(n, path,
       {{"fqdn", fqdn},
        {"cidr", cidr},
        {"service_tag", service_tag},
        {"ports", [&](const toml::node& v, const std::string& p) { parse_ports(v, p, &rule.ports); }},
        {"proto", proto},
        {"direction", direction},
        {"why", why}},
       "[[allow]]");
  if (rule.ports.empty()) rule.ports = {PortRange{}};  // all ports
  cfg_.allow.push_back(rule);
  if (errors_ != errors_before) return;  // a bad or unknown key explains what follows
  // toml++ iterates keys in name order; messages follow the file's order.
  std::sort(destinations.begin(), destinations.end(), [](const auto& x, const auto& y) {
    const auto& a = x.first->source().begin;
    const auto& b = y.first->source().begin;
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  if (destinations.empty()) {
    fail(n, path, "a rule needs a destination (add exactly one of fqdn, cidr or service_tag)");
  } else if (destinations.size() > 1) {
    fail(*destinations[1].first, path,
         destinations[0].second + " and " + destinations[1].second +
             " in one rule (keep one; write one [[allow]] per destination)");
  } else if (rule.direction == "ingress" && destinations[0].second == "fqdn" && direction_node != nullptr) {
    fail(*direction_node, path,
         "a host name cannot name the source of inbound traffic (use cidr or service_tag for ingress)");
  }
}

// [metrics]: a loopback listener unless allow_remote = true (the text carries the counters
// of the firewall: not for the network by default).
void ConfigParser::parse_metrics(const toml::node& n, const std::string& path) {
  const toml::node* listen_node = nullptr;
  auto listen = listen_key(&cfg_.metrics.listen, true);
  const size_t errors_before = errors_;
  walk(n, path,
       {{"listen",
         [&](const toml::node& v, const std::string& p) {
           listen_node = &v;
           listen(v, p);
         }},
        {"allow_remote", bool_key(&cfg_.metrics.allow_remote)}},
       "[metrics]");
  if (errors_ != errors_before || listen_node == nullptr || cfg_.metrics.listen.empty()) return;
  auto a = parse_socket_address(cfg_.metrics.listen);
  if (!a) return;
  const bool loopback = a->addr.v6 ? a->addr.value == 1 : (a->addr.v4value() >> 24) == 127;
  if (!loopback && !cfg_.metrics.allow_remote)
    fail(*listen_node, path + ".listen",
         quote(cfg_.metrics.listen) +
             " is not a loopback address (use 127.0.0.1:PORT or [::1]:PORT, or set allow_remote = true "
             "to serve the metrics to the network)");
}

// [control]: the group (besides root) whose members may use the control socket.
void ConfigParser::parse_control(const toml::node& n, const std::string& path) {
  auto group = [this](const toml::node& v, const std::string& p) {
    const std::string* s = string_of(v, p, "\"amlfw\"");
    if (s == nullptr) return;
    // POSIX portable user/group names: letters, digits, '_', '.', '-', not starting with '-',
    // at most 32 characters (what useradd/groupadd accept); "" is root only.
    bool ok = s->size() <= 32 && (s->empty() || (*s)[0] != '-');
    for (char c : *s) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
    if (!ok) {
      fail(v, p,
           quote(*s) + " is not a group name (write the name of a local group such as \"amlfw\", or \"\" for "
                       "root only)");
      return;
    }
    cfg_.control.group = *s;
  };
  walk(n, path, {{"group", group}}, "[control]");
}

void ConfigParser::check_region() {
  if (cloud_node_ != nullptr) {
    const auto* c = cloud_node_->as_string();
    if (c == nullptr || !parse_cloud(c->get())) return;  // the cloud's own error comes first
  }
  const Cloud cloud = cfg_.cloud;
  const std::string cloud_name(to_string(cloud));
  if (region_node_ == nullptr) {
    if (cloud == Cloud::kAuto) {
      cfg_.region = "auto";  // where the cloud is found at run time, so is the region
    } else if (cloud != Cloud::kPublic && cloud_node_ != nullptr) {
      const std::string example = cloud == Cloud::kUsGov ? "usgovvirginia" : "chinanorth3";
      fail(*cloud_node_, "cloud",
           "the default region 'westeurope' is not in the " + cloud_name + " cloud (add region = \"" + example +
               "\" or region = \"auto\")");
    }
    return;
  }
  const auto* sv = region_node_->as_string();
  if (sv == nullptr) return;  // type error already reported
  const std::string& text = sv->get();
  std::string name = to_lower(text);
  name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
  const auto& regions = known_regions(cloud);
  if (name == "auto" || std::find(regions.begin(), regions.end(), name) != regions.end()) {
    cfg_.region = name;
    return;
  }
  // A region of another cloud: name the cloud to set.
  for (Cloud other : {Cloud::kPublic, Cloud::kUsGov, Cloud::kChina}) {
    const auto& theirs = known_regions(other);
    if (other != cloud && std::find(theirs.begin(), theirs.end(), name) != theirs.end()) {
      const std::string other_name(to_string(other));
      fail(*region_node_, "region",
           quote(name) + " is in the " + other_name + " cloud, not in " + cloud_name + " (set cloud = \"" +
               other_name + "\" or pick a region of " + cloud_name + ")");
      return;
    }
  }
  const std::string close = suggest(name, regions);
  fail(*region_node_, "region",
       quote(text) + " is not a region of " + (cloud == Cloud::kAuto ? "any" : "the " + cloud_name) + " cloud (" +
           (close.empty() ? "use a lower-case Azure region name such as westeurope, or \"auto\""
                          : "did you mean '" + close + "'?") +
           ")");
}

void ConfigParser::check_ttls() {
  const auto& d = cfg_.dns;
  if (d.min_ttl_s <= d.max_ttl_s) return;
  const toml::node* at = max_ttl_node_ != nullptr ? max_ttl_node_ : min_ttl_node_;
  if (at == nullptr) return;
  fail(*at, "dns",
       "min_ttl (" + duration_text(d.min_ttl_s) + ") is above max_ttl (" + duration_text(d.max_ttl_s) +
           ") (make min_ttl at most max_ttl)");
}

}  // namespace amlfw::config_internal
