#include "boot/profiles.h"

#include <boost/json.hpp>

namespace ingot::boot {
namespace {

bool IsUrl(std::string_view s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0 || s.rfind("tftp://", 0) == 0;
}

// The name iPXE gives an image fetched from `url`: the last path segment, without the query.
std::string ImageName(std::string_view url) {
  size_t q = url.find_first_of("?#");
  if (q != std::string_view::npos) url = url.substr(0, q);
  size_t slash = url.rfind('/');
  return std::string(slash == std::string_view::npos ? url : url.substr(slash + 1));
}

// GRUB's parser gives these a meaning; a kernel command line keeps its spaces as separators.
std::string GrubArgs(std::string_view args) {
  std::string out;
  for (char c : args) {
    if (std::string_view("\"'$;|&<>{}\\#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// GRUB's own device syntax for an http URL: (http,HOST)/PATH. Other URLs are left as they are.
std::string GrubUrl(std::string_view url) {
  if (url.rfind("http://", 0) != 0) return std::string(url);
  std::string_view rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string_view host = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  return "(http," + std::string(host) + ")" + GrubArgs(path);
}

std::string Sanitize(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f || c == '$') ? '?' : c;
  }
  return out;
}

std::string YamlQuote(std::string_view v) {
  return boost::json::serialize(boost::json::value(std::string(v)));  // JSON strings are YAML
}

}  // namespace

std::string AssetUrl(const Profile& p, const std::string& path, const RenderContext& ctx) {
  if (IsUrl(path)) return path;
  // An absolute path is the listener's ("/files/wimboot"), a relative one the OS tree's.
  if (!path.empty() && path.front() == '/') return ctx.base_url + path;
  if (p.os) return ctx.base_url + "/" + p.os->name + "/" + p.os->version + "/" + path;
  return ctx.base_url + "/" + path;
}

Variables TemplateVariables(const Machine& m, const Profile& p, const RenderContext& ctx) {
  Variables extra{{"base_url", ctx.base_url},
                  {"nocloud_url", ctx.base_url + "/nocloud/" + m.id + "/"},
                  {"metadata_url", ctx.base_url + "/metadata/" + m.id}};
  Variables v = VariablesFor(m, &p, extra);
  // Kernel and initrd paths may themselves be templates (a per-machine path).
  if (!p.kernel.empty()) {
    auto k = RenderTemplate(p.kernel, "kernel", v, TemplateContext::kIpxe);
    if (k.ok()) v["kernel_url"] = AssetUrl(p, *k, ctx);
  }
  std::string all;
  for (size_t i = 0; i < p.initrds.size(); ++i) {
    auto r = RenderTemplate(p.initrds[i], "initrd", v, TemplateContext::kIpxe);
    if (!r.ok()) continue;
    std::string url = AssetUrl(p, *r, ctx);
    if (i == 0) v["initrd_url"] = url;
    all += (all.empty() ? "" : " ") + url;
  }
  v["initrd_urls"] = all;
  return v;
}

Result<std::string> RenderArgs(const Machine& m, const Profile& p, const RenderContext& ctx) {
  Variables v = TemplateVariables(m, p, ctx);
  return RenderTemplate(p.args, "the args of profile '" + p.name + "'", v, TemplateContext::kIpxe);
}

namespace {

struct Assets {
  std::string kernel;
  std::vector<std::string> initrds;
  std::vector<std::string> initrd_names;  // "" or the name iPXE should give it
  std::string os_args;                    // the OS tree's own arguments, placeholders filled
};

std::string Replace(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

Result<Assets> AssetsOf(const Profile& p, const Variables& v, const RenderContext& ctx) {
  Assets a;
  if (p.kernel.empty()) {
    if (!p.os || !ctx.os || ctx.os->kernel.empty()) {
      return InvalidArgument("profile '" + p.name + "' boots OS tree " +
                             (p.os ? p.os->name + "/" + p.os->version : std::string("?")) +
                             ", which is not ready or has no kernel Ingot could detect");
    }
    a.kernel = AssetUrl(p, ctx.os->kernel, ctx);
    for (const std::string& i : ctx.os->initrds) {
      size_t space = i.find(' ');
      a.initrds.push_back(AssetUrl(p, i.substr(0, space), ctx));
      a.initrd_names.push_back(space == std::string::npos ? "" : i.substr(space + 1));
    }
    std::string base = ctx.base_url + "/" + p.os->name + "/" + p.os->version + "/";
    a.os_args = Replace(Replace(ctx.os->args, "{base}", base), "{iso}", ctx.os->iso_url);
    return a;
  }
  INGOT_ASSIGN_OR_RETURN(std::string k, RenderTemplate(p.kernel, "the kernel of profile '" + p.name + "'",
                                                       v, TemplateContext::kIpxe));
  a.kernel = AssetUrl(p, k, ctx);
  for (const std::string& i : p.initrds) {
    INGOT_ASSIGN_OR_RETURN(std::string r, RenderTemplate(i, "an initrd of profile '" + p.name + "'",
                                                         v, TemplateContext::kIpxe));
    a.initrds.push_back(AssetUrl(p, r, ctx));
    a.initrd_names.emplace_back();
  }
  return a;
}

}  // namespace

Result<std::string> RenderIpxe(const Machine& m, const Profile& p, const RenderContext& ctx) {
  Variables v = TemplateVariables(m, p, ctx);
  if (!p.ipxe.empty()) {
    return RenderTemplate(p.ipxe, "the ipxe script of profile '" + p.name + "'", v,
                          TemplateContext::kIpxe);
  }

  if (!p.image.empty()) {
    // A published disk image, read by iPXE over HTTP (ranges) as a SAN disk and booted from.
    return "#!ipxe\n# Ingot: profile " + p.name + " for machine " +
           (m.mac.empty() ? m.uuid : m.mac) + "\nsanboot --no-describe " + ctx.base_url +
           "/images/" + p.image + "\n";
  }
  INGOT_ASSIGN_OR_RETURN(Assets a, AssetsOf(p, v, ctx));
  INGOT_ASSIGN_OR_RETURN(std::string args,
                         RenderTemplate(p.args, "the args of profile '" + p.name + "'", v,
                                        TemplateContext::kIpxe));
  std::string s = "#!ipxe\n# Ingot: profile " + p.name + " for machine " +
                  (m.mac.empty() ? m.uuid : m.mac) + "\n";
  std::string kernel_line = "kernel " + a.kernel;
  auto name_of = [&](size_t i) {
    return a.initrd_names[i].empty() ? ImageName(a.initrds[i]) : a.initrd_names[i];
  };
  for (size_t i = 0; i < a.initrds.size(); ++i) kernel_line += " initrd=" + name_of(i);
  if (!a.os_args.empty()) kernel_line += " " + a.os_args;
  if (!args.empty()) kernel_line += " " + args;
  s += kernel_line + "\n";
  if (ctx.signed_assets) s += "imgverify " + ImageName(a.kernel) + " " + a.kernel + ".sig\n";
  for (size_t i = 0; i < a.initrds.size(); ++i) {
    s += "initrd " + (a.initrd_names[i].empty() ? "" : "--name " + a.initrd_names[i] + " ") +
         a.initrds[i] + "\n";
    if (ctx.signed_assets) s += "imgverify " + name_of(i) + " " + a.initrds[i] + ".sig\n";
  }
  s += "boot\n";
  return s;
}

Result<std::string> RenderGrub(const Machine& m, const Profile& p, const RenderContext& ctx) {
  Variables v = TemplateVariables(m, p, ctx);
  if (!p.grub.empty()) {
    return RenderTemplate(p.grub, "the grub script of profile '" + p.name + "'", v,
                          TemplateContext::kGrub);
  }
  if (!p.image.empty()) {
    return InvalidArgument("profile '" + p.name + "' boots a published image, which GRUB cannot "
                           "(iPXE's sanboot can)");
  }

  INGOT_ASSIGN_OR_RETURN(Assets a, AssetsOf(p, v, ctx));
  INGOT_ASSIGN_OR_RETURN(std::string args,
                         RenderTemplate(p.args, "the args of profile '" + p.name + "'", v,
                                        TemplateContext::kIpxe));
  std::string s = "# Ingot: profile " + p.name + " for machine " + (m.mac.empty() ? m.uuid : m.mac) +
                  "\n";
  std::string all_args = a.os_args;
  if (!args.empty()) all_args += (all_args.empty() ? "" : " ") + args;
  s += "linux " + GrubUrl(a.kernel) + (all_args.empty() ? "" : " " + GrubArgs(all_args)) + "\n";
  if (!a.initrds.empty()) {
    s += "initrd";
    for (const std::string& i : a.initrds) s += " " + GrubUrl(i);
    s += "\n";
  }
  s += "boot\n";
  return s;
}

std::string HoldingIpxe(const Machine& m, const RenderContext& ctx) {
  std::string who = Sanitize(m.mac.empty() ? m.uuid : m.mac);
  std::string n = std::to_string(ctx.holding_retry_seconds);
  return "#!ipxe\n"
         "# Ingot: holding script (no boot profile for this machine yet)\n"
         "echo Ingot: machine " + who + " has no boot profile yet; it is recorded as discovered.\n"
         "echo Ingot: asking again in " + n + " seconds.\n"
         "sleep " + n + "\n"
         "chain " + ctx.base_url + "/boot.ipxe?" + ctx.identity_query + "\n";
}

std::string HoldingGrub(const Machine& m, const RenderContext& ctx) {
  std::string who = Sanitize(m.mac.empty() ? m.uuid : m.mac);
  std::string n = std::to_string(ctx.holding_retry_seconds);
  return "# Ingot: holding script (no boot profile for this machine yet)\n"
         "echo \"Ingot: machine " + who + " has no boot profile yet; it is recorded as discovered.\"\n"
         "sleep " + n + "\n"
         "configfile " + GrubUrl(ctx.base_url + "/boot.grub?" + ctx.identity_query) + "\n";
}

std::string IdentifyIpxe(const RenderContext& ctx) {
  return "#!ipxe\n"
         "# Ingot: tell the boot service who this machine is, then run its own script\n"
         "chain " + ctx.base_url +
         "/boot.ipxe?mac=${net0/mac}&uuid=${uuid}&serial=${serial:uristring}"
         "&hostname=${hostname:uristring}&arch=${buildarch}&platform=${platform}\n";
}

std::string ErrorIpxe(std::string_view message, const RenderContext& ctx) {
  std::string n = std::to_string(ctx.holding_retry_seconds);
  return "#!ipxe\n"
         "echo Ingot: this machine's boot script could not be rendered:\n"
         "echo " + Sanitize(message) + "\n"
         "sleep " + n + "\n"
         "chain " + ctx.base_url + "/boot.ipxe?" + ctx.identity_query + "\n";
}

std::string NoCloudMetaData(const Machine& m) {
  std::string s = "instance-id: " + YamlQuote(m.id) + "\n";
  if (!m.hostname.empty()) s += "local-hostname: " + YamlQuote(m.hostname) + "\n";
  return s;
}

Result<std::string> NoCloudUserData(const Machine& m, const Profile* p, const RenderContext& ctx) {
  if (p == nullptr || p->user_data.empty()) return std::string();
  return RenderTemplate(p->user_data, "the user_data of profile '" + p->name + "'",
                        TemplateVariables(m, *p, ctx), TemplateContext::kText);
}

Result<std::string> NoCloudVendorData(const Machine& m, const Profile* p,
                                      const RenderContext& ctx) {
  if (p == nullptr || p->vendor_data.empty()) return std::string();
  return RenderTemplate(p->vendor_data, "the vendor_data of profile '" + p->name + "'",
                        TemplateVariables(m, *p, ctx), TemplateContext::kText);
}

std::vector<std::string> Ec2MetaDataKeys() {
  return {"hostname", "instance-id", "instance-type", "local-hostname", "local-ipv4", "mac"};
}

std::optional<std::string> Ec2MetaDataValue(const Machine& m, std::string_view key) {
  if (key == "instance-id") return m.id;
  if (key == "hostname" || key == "local-hostname") return m.hostname;
  if (key == "instance-type") return std::string("bare-metal");
  if (key == "local-ipv4") return m.last_address;
  if (key == "mac") return m.mac;
  return std::nullopt;
}

std::string OpenStackMetaData(const Machine& m) {
  boost::json::object meta;
  for (const auto& [k, v] : m.labels) meta[k] = v;
  boost::json::object o{{"uuid", m.id},
                        {"hostname", m.hostname},
                        {"name", m.hostname},
                        {"availability_zone", ""},
                        {"launch_index", 0},
                        {"meta", std::move(meta)}};
  return boost::json::serialize(o);
}

}  // namespace ingot::boot
