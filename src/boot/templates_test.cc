#include "boot/templates.h"

#include <gtest/gtest.h>

namespace ingot::boot {
namespace {

const Variables kVars = {{"mac", "52:54:00:12:34:56"},
                         {"hostname", "node 1; reboot"},
                         {"label.rack", "r12"},
                         {"evil", "x\nshell"},
                         {"expand", "${net0/ip}"}};

TEST(TemplateTest, FillsHolesWithAndWithoutSpaces) {
  auto r = RenderTemplate("kernel k mac={{.mac}} rack={{ .label.rack }}", "t", kVars,
                          TemplateContext::kIpxe);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "kernel k mac=52:54:00:12:34:56 rack=r12");
}

TEST(TemplateTest, MissingVariableIsAClearErrorWithLine) {
  auto r = RenderTemplate("#!ipxe\necho {{.nope}}\n", "the ipxe script of profile 'p'", kVars,
                          TemplateContext::kIpxe);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("the ipxe script of profile 'p', line 2"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("{{.nope}}"), std::string::npos);
  EXPECT_NE(r.status().message().find("mac"), std::string::npos);  // what the machine has
}

TEST(TemplateTest, SyntaxErrorsAreFoundAtParse) {
  EXPECT_FALSE(Template::Parse("a {{.mac", "t").ok());
  EXPECT_FALSE(Template::Parse("a {{mac}}", "t").ok());
  EXPECT_FALSE(Template::Parse("a {{.mac | upper}}", "t").ok());
  EXPECT_FALSE(Template::Parse("a {{.1x}}", "t").ok());
  EXPECT_FALSE(Template::Parse("a {{.mac\n}}", "t").ok());
  EXPECT_TRUE(Template::Parse("plain } { text", "t").ok());
  auto t = Template::Parse("{{.a}} {{.b}} {{.a}}", "t");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Names(), (std::vector<std::string>{"a", "b"}));
}

TEST(TemplateTest, ScriptsRefuseLineBreaksAndIpxeExpansion) {
  auto r = RenderTemplate("echo {{.evil}}", "t", kVars, TemplateContext::kIpxe);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line break"), std::string::npos);
  EXPECT_FALSE(RenderTemplate("echo {{.evil}}", "t", kVars, TemplateContext::kGrub).ok());
  r = RenderTemplate("echo {{.expand}}", "t", kVars, TemplateContext::kIpxe);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("${"), std::string::npos);
  // Plain text (cloud-init) takes them as they are.
  EXPECT_EQ(*RenderTemplate("{{.evil}}", "t", kVars, TemplateContext::kText), "x\nshell");
}

TEST(TemplateTest, GrubEscapesItsSpecialCharacters) {
  auto r = RenderTemplate("set h={{.hostname}}", "t", kVars, TemplateContext::kGrub);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "set h=node\\ 1\\;\\ reboot");
}

TEST(TemplateTest, Filters) {
  EXPECT_EQ(*RenderTemplate("{{.hostname | urlquery}}", "t", kVars, TemplateContext::kIpxe),
            "node%201%3B%20reboot");
  EXPECT_EQ(*RenderTemplate("h: {{.evil | json}}", "t", kVars, TemplateContext::kText),
            "h: \"x\\nshell\"");
  EXPECT_EQ(*RenderTemplate("{{.evil | json}}", "t", kVars, TemplateContext::kIpxe),
            "\"x\\nshell\"");  // escaped first: no line break is left
  Variables q{{"s", "it's"}};
  EXPECT_EQ(*RenderTemplate("{{.s|shquote}}", "t", q, TemplateContext::kText), "'it'\\''s'");
}

}  // namespace
}  // namespace ingot::boot
