#include "build/kiwi.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ingot::build {
namespace {

constexpr const char* kDescription = R"(<?xml version="1.0" encoding="utf-8"?>
<image schemaversion="7.4" name="{{ name }}">
  <description type="system">
    <author>Ingot</author>
    <contact>ingot@invalid</contact>
    <specification>Debian 12</specification>
  </description>
  <preferences>
    <version>1.0.0</version>
    <packagemanager>apt</packagemanager>
    <type image="tbz"/>
    <type image="oem" kernelcmdline="console=ttyS0"/>
  </preferences>
  <repository type="apt-deb" alias="debian" distribution="bookworm" components="main contrib">
    <source path="{{ mirror }}/"/>
  </repository>
  <packages type="image">
    <package name="linux-image-amd64"/>
  </packages>
  <packages type="bootstrap">
    <package name="ca-certificates"/>
  </packages>
</image>
)";

class KiwiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ingot-kiwi-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  std::string Read(const std::string& rel) {
    std::ifstream in(dir_ / rel);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  const std::map<std::string, std::string> dict_ = {{"name", "deb-kiwi"},
                                                    {"mirror", "http://deb.debian.org/debian"}};
  std::filesystem::path dir_;
};

TEST_F(KiwiTest, TemplatesTheFilesImsListsAndReadsTheDescription) {
  Write("config.kiwi", kDescription);
  Write("config.sh", "#!/bin/bash\necho {{ name }} > /etc/marker\n");
  chmod((dir_ / "config.sh").c_str(), 0755);
  Write(".ims_recipe_template.yaml", "template_files:\n  - config.kiwi\n  - config.sh\n");
  auto r = LoadKiwiRecipe(dir_.string(), dict_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const KiwiDescription& d = r->description;
  EXPECT_EQ(d.file, "config.kiwi");
  EXPECT_EQ(d.name, "deb-kiwi");
  EXPECT_EQ(d.types, (std::vector<std::string>{"tbz", "oem"}));
  EXPECT_EQ(d.kernel_parameters, "console=ttyS0");
  ASSERT_EQ(d.repositories.size(), 1u);
  EXPECT_EQ(d.repositories[0].url, "http://deb.debian.org/debian");
  EXPECT_EQ(d.repositories[0].distribution, "bookworm");
  EXPECT_EQ(d.repositories[0].components, (std::vector<std::string>{"main", "contrib"}));
  EXPECT_EQ(d.packages, (std::vector<std::string>{"linux-image-amd64", "ca-certificates"}));
  ASSERT_TRUE(WriteKiwiTemplates(dir_.string(), *r).ok());
  EXPECT_EQ(Read("config.sh"), "#!/bin/bash\necho deb-kiwi > /etc/marker\n");
  EXPECT_NE(Read("config.kiwi").find("<source path=\"http://deb.debian.org/debian/\"/>"),
            std::string::npos);
  struct stat st;
  ASSERT_EQ(stat((dir_ / "config.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);  // the rendered script keeps its mode

  auto plan = PrepareKiwiRecipe(dir_.string(), dict_);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->suite, "bookworm");
  EXPECT_EQ(plan->mirror, "http://deb.debian.org/debian");
  EXPECT_TRUE(plan->steps.empty());
}

TEST_F(KiwiTest, WithoutTheTemplateListNothingIsTemplatedAsInIms) {
  Write("config.xml", kDescription);
  auto r = LoadKiwiRecipe(dir_.string(), dict_);
  // The untemplated source path is no URL: the check says so, with the line.
  EXPECT_EQ(r.status().message(),
            "config.xml:15: source path '{{ mirror }}/' must be an http(s):// URL of a Debian "
            "archive");
}

TEST_F(KiwiTest, TemplateListErrors) {
  Write("config.kiwi", kDescription);
  Write(".ims_recipe_template.yaml", "template_files:\n  - config.kiwi\n");
  EXPECT_EQ(LoadKiwiRecipe(dir_.string(), {}).status().message(),
            ".ims_recipe_template.yaml:2: the recipe expects to be templated, but the recipe "
            "record's template_dictionary is empty");
  EXPECT_EQ(LoadKiwiRecipe(dir_.string(), {{"name", "x"}}).status().message(),
            "config.kiwi:15: template variable 'mirror' is not in the template_dictionary");
  Write(".ims_recipe_template.yaml", "template_files:\n  - ../etc/passwd\n");
  EXPECT_EQ(LoadKiwiRecipe(dir_.string(), dict_).status().message(),
            ".ims_recipe_template.yaml:2: '../etc/passwd' is not a path inside the recipe");
  Write(".ims_recipe_template.yaml", "template_files:\n  - config.kiwi\n");
  Write("config.kiwi", std::string(kDescription) + "<!--\n{% if x %}\n-->\n");
  EXPECT_EQ(LoadKiwiRecipe(dir_.string(), dict_).status().message(),
            "config.kiwi:25: Jinja2 statements ({% ... %}) are not supported; only {{ name }} is "
            "templated");
}

TEST_F(KiwiTest, DescriptionErrorsNameFileAndLine) {
  struct Case {
    std::string xml;
    std::string message;
  };
  const std::string head = "<?xml version=\"1.0\"?>\n<image schemaversion=\"7.4\" name=\"x\">\n";
  const std::string prefs =
      "<preferences>\n<packagemanager>apt</packagemanager>\n"
      "<type image=\"tbz\"/>\n</preferences>\n";
  const std::string repo =
      "<repository type=\"apt-deb\" distribution=\"bookworm\">\n"
      "<source path=\"http://deb.debian.org/debian\"/>\n</repository>\n";
  std::vector<Case> cases = {
      {head + prefs + repo + "</image>\n", ""},
      {head + prefs + repo + "</imag>\n", "config.kiwi:10: not well-formed XML: mismatched tag"},
      {"<?xml version=\"1.0\"?>\n<!DOCTYPE image [<!ENTITY a \"b\">]>\n<image/>\n",
       "config.kiwi:2: a DOCTYPE is not accepted"},
      {"<?xml version=\"1.0\"?>\n<config/>\n", "config.kiwi:2: the root element is <config>"},
      {head +
           "<preferences>\n<packagemanager>zypper</packagemanager>\n<type image=\"tbz\"/>\n"
           "</preferences>\n" +
           repo + "</image>\n",
       "config.kiwi:4: packagemanager 'zypper': this builder makes Debian roots with apt"},
      {head +
           "<preferences>\n<packagemanager>apt</packagemanager>\n<type image=\"oem\"/>\n"
           "</preferences>\n" +
           repo + "</image>\n",
       "config.kiwi:3: no <type image=\"tbz\"/>: IMS builds kiwi-ng recipes with --type tbz"},
      {head + prefs +
           "<repository type=\"rpm-md\">\n<source path=\"http://x/\"/>\n</repository>\n"
           "</image>\n",
       "config.kiwi:7: repository type 'rpm-md': this builder makes Debian roots"},
      {head + prefs +
           "<repository type=\"apt-deb\">\n<source path=\"http://x/\"/>\n"
           "</repository>\n</image>\n",
       "config.kiwi:7: an apt-deb repository needs distribution=\"SUITE\""},
      {head + prefs +
           "<repository type=\"apt-deb\" distribution=\"bookworm\">\n"
           "<source path=\"obs://x\"/>\n</repository>\n</image>\n",
       "config.kiwi:8: source path 'obs://x' must be an http(s):// URL"},
      {head + prefs + "</image>\n", "config.kiwi:1: no <repository type=\"apt-deb\">"},
      {head +
           "<preferences>\n<packagemanager>apt</packagemanager>\n"
           "<type image=\"tbz\" kernelcmdline=\"quiet\"/>\n</preferences>\n" +
           repo + "</image>\n",
       "config.kiwi:5: kernelcmdline is not allowed on the tbz type"},
      {head + prefs + repo +
           "<packages type=\"image\">\n<package name=\"Bad Name\"/>\n"
           "</packages>\n</image>\n",
       "config.kiwi:11: 'Bad Name' is not a Debian package name"},
  };
  for (const auto& c : cases) {
    auto r = ParseKiwiDescription(c.xml, "config.kiwi");
    if (c.message.empty()) {
      EXPECT_TRUE(r.ok()) << r.status().message();
      continue;
    }
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.xml;
    EXPECT_EQ(r.status().message().rfind(c.message, 0), 0u)
        << r.status().message() << "\nwanted: " << c.message;
  }
}

TEST_F(KiwiTest, NeedsOneDescriptionFile) {
  EXPECT_EQ(LoadKiwiRecipe(dir_.string(), {}).status().message(),
            "a kiwi-ng recipe needs config.kiwi or config.xml at its top level");
  Write("config.kiwi", kDescription);
  Write("config.xml", kDescription);
  EXPECT_EQ(LoadKiwiRecipe(dir_.string(), {}).status().message(),
            "config.kiwi and config.xml: keep one of them");
}

}  // namespace
}  // namespace ingot::build
