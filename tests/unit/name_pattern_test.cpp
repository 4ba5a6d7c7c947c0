// SPDX-License-Identifier: MIT
#include "policy/name_pattern.h"

#include <gtest/gtest.h>

namespace amlfw {
namespace {

NamePattern pat(std::string_view s) {
  auto p = NamePattern::parse(s);
  EXPECT_TRUE(p.ok()) << s << ": " << (p.ok() ? "" : p.error().message);
  return p.ok() ? *p : NamePattern{};
}

std::string rejection(std::string_view s) {
  auto p = NamePattern::parse(s);
  EXPECT_FALSE(p.ok()) << "'" << s << "' was accepted as " << (p.ok() ? p->str() : "");
  if (p.ok()) return "";
  EXPECT_EQ(p.error().code, Exit::kUsage);
  EXPECT_EQ(p.error().message.find('\n'), std::string::npos);
  return p.error().message;
}

TEST(NamePattern, ExactName) {
  NamePattern p = pat("Management.Azure.com");
  EXPECT_EQ(p.kind(), NamePattern::Kind::kExact);
  EXPECT_EQ(p.base(), "management.azure.com");
  EXPECT_EQ(p.str(), "management.azure.com");
  EXPECT_TRUE(p.matches("management.azure.com"));
  EXPECT_TRUE(p.matches("MANAGEMENT.AZURE.COM"));
  EXPECT_TRUE(p.matches("management.azure.com."));
  EXPECT_FALSE(p.matches("x.management.azure.com"));
  EXPECT_FALSE(p.matches("azure.com"));
  EXPECT_FALSE(p.matches("management.azure.com.."));
  EXPECT_FALSE(p.matches("management.azure.co"));
  EXPECT_FALSE(p.matches(""));
}

TEST(NamePattern, SubdomainsOnly) {
  NamePattern p = pat("*.anaconda.com");
  EXPECT_EQ(p.kind(), NamePattern::Kind::kSubdomains);
  EXPECT_EQ(p.base(), "anaconda.com");
  EXPECT_EQ(p.str(), "*.anaconda.com");
  EXPECT_TRUE(p.matches("repo.anaconda.com"));
  EXPECT_TRUE(p.matches("a.b.c.repo.anaconda.com"));  // any depth
  EXPECT_TRUE(p.matches("Repo.AnaConda.Com."));
  EXPECT_FALSE(p.matches("anaconda.com"));  // not the apex
  EXPECT_FALSE(p.matches("anaconda.com."));
  EXPECT_FALSE(p.matches("evilanaconda.com"));
  EXPECT_FALSE(p.matches("anaconda.com.evil.example"));
  EXPECT_FALSE(p.matches("repo.anaconda.com.evil.example"));
  EXPECT_FALSE(p.matches(".anaconda.com"));   // empty label
  EXPECT_FALSE(p.matches("a..anaconda.com"));
  EXPECT_FALSE(p.matches("repo.anaconda.org"));
}

TEST(NamePattern, ApexAndSubdomainsNeverLookAlikes) {
  NamePattern p = pat("*pytorch.org");
  EXPECT_EQ(p.kind(), NamePattern::Kind::kApexAndSubdomains);
  EXPECT_EQ(p.base(), "pytorch.org");
  EXPECT_EQ(p.str(), "*pytorch.org");
  EXPECT_TRUE(p.matches("pytorch.org"));
  EXPECT_TRUE(p.matches("download.pytorch.org"));
  EXPECT_TRUE(p.matches("a.b.download.pytorch.org."));
  EXPECT_TRUE(p.matches("PyTorch.ORG"));
  EXPECT_FALSE(p.matches("evilpytorch.org"));
  EXPECT_FALSE(p.matches("evil-pytorch.org"));
  EXPECT_FALSE(p.matches("pytorch.org.evil.example"));
  EXPECT_FALSE(p.matches("ytorch.org"));
  EXPECT_FALSE(p.matches("pytorch.orgx"));
  EXPECT_FALSE(p.matches("org"));
}

TEST(NamePattern, TrailingDotInPatternIgnored) {
  EXPECT_EQ(pat("example.com.").str(), "example.com");
  EXPECT_EQ(pat("*.example.com.").str(), "*.example.com");
  EXPECT_EQ(pat("*Example.COM.").str(), "*example.com");
  EXPECT_TRUE(pat("*.example.com.").matches("www.example.com"));
}

TEST(NamePattern, EqualityByCanonicalForm) {
  EXPECT_EQ(pat("*.Example.com"), pat("*.example.com."));
  EXPECT_FALSE(pat("*.example.com") == pat("*example.com"));
  EXPECT_FALSE(pat("example.com") == pat("*example.com"));
}

TEST(NamePattern, UnderscoreAndDigitsAndHyphens) {
  NamePattern p = pat("_acme-challenge.x-1.example.com");
  EXPECT_TRUE(p.matches("_ACME-challenge.x-1.example.com"));
  EXPECT_TRUE(pat("*.blob.core.windows.net").matches("mystore01.blob.core.windows.net"));
}

TEST(NamePattern, LengthLimits) {
  const std::string label63(63, 'a');
  const std::string label64(64, 'a');
  EXPECT_TRUE(NamePattern::parse(label63 + ".example.com").ok());
  EXPECT_NE(rejection(label64 + ".example.com").find("longer than 63"), std::string::npos);
  EXPECT_NE(rejection("*." + label64 + ".com").find("longer than 63"), std::string::npos);
  // 253 characters is the longest name, 254 too long (one trailing dot does not count).
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  EXPECT_TRUE(NamePattern::parse(name253).ok());
  EXPECT_TRUE(NamePattern::parse(name253 + ".").ok());
  EXPECT_NE(rejection(name253 + "b").find("longer than 253"), std::string::npos);
  EXPECT_TRUE(pat(name253).matches(name253 + "."));
  EXPECT_FALSE(pat("*.example.com").matches(std::string(200, 'a') + "." + label63 +
                                             ".example.com"));  // > 253
  EXPECT_FALSE(pat("*.example.com").matches(label64 + ".example.com"));
}

TEST(NamePattern, Rejections) {
  EXPECT_NE(rejection("*").find("matches every name"), std::string::npos);
  EXPECT_NE(rejection("*.").find("matches every name"), std::string::npos);
  EXPECT_NE(rejection("").find("empty label"), std::string::npos);
  EXPECT_NE(rejection("*.com").find("top-level"), std::string::npos);
  EXPECT_NE(rejection("*com").find("top-level"), std::string::npos);
  EXPECT_NE(rejection("*.com.").find("top-level"), std::string::npos);
  EXPECT_NE(rejection("www.*.example.com").find("first character"), std::string::npos);
  EXPECT_NE(rejection("example.*").find("first character"), std::string::npos);
  EXPECT_NE(rejection("**.example.com").find("first character"), std::string::npos);
  EXPECT_NE(rejection("*.*.example.com").find("first character"), std::string::npos);
  EXPECT_NE(rejection("a..example.com").find("empty label"), std::string::npos);
  EXPECT_NE(rejection(".example.com").find("empty label"), std::string::npos);
  EXPECT_NE(rejection("*..example.com").find("empty label"), std::string::npos);
  EXPECT_NE(rejection("example.com..").find("empty label"), std::string::npos);
  EXPECT_NE(rejection("exa mple.com").find("character ' '"), std::string::npos);
  EXPECT_NE(rejection("example.com/path").find("character '/'"), std::string::npos);
  EXPECT_NE(rejection("https://example.com").find("character ':'"), std::string::npos);
  EXPECT_NE(rejection("ex\xc3\xa4mple.com").find("character"), std::string::npos);
  EXPECT_NE(rejection("<storage>.blob.core.windows.net").find("template"), std::string::npos);
  EXPECT_NE(rejection("*.<region>.batch.azure.com").find("template"), std::string::npos);
  EXPECT_NE(rejection("{workspace}.example.com").find("template"), std::string::npos);
  EXPECT_NE(rejection(std::string_view("a\0b.com", 7)).find("character"), std::string::npos);
}

TEST(NamePattern, MatchesRejectsInvalidNames) {
  NamePattern p = pat("*example.com");
  EXPECT_FALSE(p.matches("exa mple.com"));
  EXPECT_FALSE(p.matches("a b.example.com"));
  EXPECT_FALSE(p.matches("*.example.com"));
  EXPECT_FALSE(p.matches("."));
  EXPECT_FALSE(p.matches(std::string_view("x.example.com\0", 14)));
}

TEST(NormalizeDnsName, LowercasesAndStripsOneDot) {
  std::string out;
  ASSERT_TRUE(normalize_dns_name("WWW.Example.COM.", &out));
  EXPECT_EQ(out, "www.example.com");
  ASSERT_TRUE(normalize_dns_name("localhost", &out));
  EXPECT_EQ(out, "localhost");
  EXPECT_FALSE(normalize_dns_name("", &out));
  EXPECT_FALSE(normalize_dns_name(".", &out));
  EXPECT_FALSE(normalize_dns_name("example.com..", &out));
  EXPECT_FALSE(normalize_dns_name("a..b", &out));
  EXPECT_FALSE(normalize_dns_name("*.example.com", &out));
  EXPECT_FALSE(normalize_dns_name("ex ample.com", &out));
  EXPECT_FALSE(normalize_dns_name(std::string(64, 'a') + ".com", &out));
  EXPECT_FALSE(normalize_dns_name(std::string(254, 'a'), &out));
}

}  // namespace
}  // namespace amlfw
