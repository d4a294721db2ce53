// Unit tests of the local endpoint's STS (apps/endpoint/sts_api.c): the
// AssumeRole answer, parameter validation as AWS documents it, the external
// id, and the secret lookup the SigV4 verifier uses for issued keys (right
// token only).  The HTTP path is tested end to end in
// e2e/test_app_assume_role_e2e.cpp.
#include <gtest/gtest.h>

#include <string>

#include "cpl_minixml.h"
#include "cpl_string.h"
#include "sts_api.h"

namespace {

struct Answer {
  int status = 0;
  std::string body;
};

Answer call(ep_sts_api *s, const std::string &form) {
  ep_request req = {};
  req.method = "POST";
  req.raw_path = req.path = "/";
  req.raw_query = "";
  req.body = reinterpret_cast<const unsigned char *>(form.data());
  req.body_len = form.size();
  req.request_id = "REQ1";
  ep_response resp;
  ep_response_init(&resp);
  ep_sts_api_handle(s, &req, &resp);
  Answer a;
  a.status = resp.status;
  a.body.assign(reinterpret_cast<const char *>(resp.body.data), resp.body.len);
  ep_response_clear(&resp);
  return a;
}

std::string xml_value(const std::string &xml, const char *path) {
  CPLXMLNode *root = CPLParseXMLString(xml.c_str());
  if (!root) return "";
  CPLStripXMLNamespace(root, nullptr, TRUE);
  CPLXMLNode *n = CPLSearchXMLNode(root, path[0] == '=' ? path : (std::string("=") + path).c_str());
  std::string v = n && n->psChild ? CPLGetXMLValue(n, nullptr, "") : "";
  CPLDestroyXMLNode(root);
  return v;
}

const char *kRole = "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdetector";

TEST(EndpointSts, AssumeRoleIssuesCredentialsTheVerifierAccepts) {
  ep_sts_api *s = ep_sts_api_new(nullptr);
  Answer a = call(s, std::string("Action=AssumeRole&Version=2011-06-15&") + kRole +
                         "&RoleSessionName=gdal-asyncdetect-1&DurationSeconds=900");
  ASSERT_EQ(200, a.status) << a.body;
  std::string akid = xml_value(a.body, "AccessKeyId");
  std::string secret = xml_value(a.body, "SecretAccessKey");
  std::string token = xml_value(a.body, "SessionToken");
  EXPECT_EQ(0u, akid.find("ASIA")) << a.body;
  EXPECT_EQ(20u, akid.size());
  EXPECT_EQ(40u, secret.size());
  EXPECT_GT(token.size(), 40u);
  EXPECT_FALSE(xml_value(a.body, "Expiration").empty());
  EXPECT_EQ("arn:aws:sts::123456789012:assumed-role/detector/gdal-asyncdetect-1", xml_value(a.body, "Arn"));

  char out[128];
  ASSERT_EQ(0, ep_sts_api_lookup(s, akid.c_str(), token.c_str(), out, sizeof out));
  EXPECT_EQ(secret, out);
  EXPECT_EQ(-2, ep_sts_api_lookup(s, akid.c_str(), (token + "x").c_str(), out, sizeof out)) << "wrong token";
  EXPECT_EQ(-2, ep_sts_api_lookup(s, akid.c_str(), nullptr, out, sizeof out)) << "no token";
  EXPECT_EQ(-1, ep_sts_api_lookup(s, "ASIANOTISSUEDBYUS000", token.c_str(), out, sizeof out));

  // A second session has its own key and token: tokens do not cross.
  Answer b = call(s, std::string("Action=AssumeRole&") + kRole + "&RoleSessionName=other");
  ASSERT_EQ(200, b.status) << b.body;
  EXPECT_NE(akid, xml_value(b.body, "AccessKeyId"));
  EXPECT_EQ(-2, ep_sts_api_lookup(s, xml_value(b.body, "AccessKeyId").c_str(), token.c_str(), out, sizeof out));
  ep_sts_api_free(s);
}

TEST(EndpointSts, ValidatesParametersAsAwsDoes) {
  ep_sts_api *s = ep_sts_api_new(nullptr);
  struct Case {
    std::string form;
    int status;
    const char *code;
  } cases[] = {
      {"Action=AssumeRole&RoleSessionName=x1", 400, "MissingParameter"},
      {std::string("Action=AssumeRole&") + kRole, 400, "MissingParameter"},
      {"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123%3Arole%2Fx&RoleSessionName=s1", 400, "ValidationError"},
      {std::string("Action=AssumeRole&") + kRole + "&RoleSessionName=a", 400, "ValidationError"},
      {std::string("Action=AssumeRole&") + kRole + "&RoleSessionName=bad%20name", 400, "ValidationError"},
      {std::string("Action=AssumeRole&") + kRole + "&RoleSessionName=s1&DurationSeconds=60", 400, "ValidationError"},
      {std::string("Action=AssumeRole&") + kRole + "&RoleSessionName=s1&ExternalId=x", 400, "ValidationError"},
      {"Action=GetFederationToken", 400, "InvalidAction"},
      {"RoleSessionName=s1", 400, "MissingAction"},
  };
  for (const Case &c : cases) {
    Answer a = call(s, c.form);
    EXPECT_EQ(c.status, a.status) << c.form << "\n" << a.body;
    EXPECT_EQ(c.code, xml_value(a.body, "Code")) << c.form;
    EXPECT_NE(std::string::npos, a.body.find("<ErrorResponse")) << "STS's error dialect";
  }
  ep_sts_api_free(s);
}

TEST(EndpointSts, RequiredExternalId) {
  ep_sts_api *s = ep_sts_api_new("ext-123");
  std::string base = std::string("Action=AssumeRole&") + kRole + "&RoleSessionName=s1";
  Answer none = call(s, base);
  EXPECT_EQ(403, none.status);
  EXPECT_EQ("AccessDenied", xml_value(none.body, "Code"));
  EXPECT_EQ(403, call(s, base + "&ExternalId=ext-124").status);
  EXPECT_EQ(200, call(s, base + "&ExternalId=ext-123").status);
  ep_sts_api_free(s);
}

TEST(EndpointSts, ExpiredCredentialsAreRefused) {
  ep_sts_api *s = ep_sts_api_new(nullptr);
  ep_sts_api_set_clock(s, 1.8e9);
  Answer a = call(s, std::string("Action=AssumeRole&") + kRole + "&RoleSessionName=s1&DurationSeconds=900");
  ASSERT_EQ(200, a.status) << a.body;
  EXPECT_EQ("2027-01-15T08:15:00Z", xml_value(a.body, "Expiration"));
  std::string akid = xml_value(a.body, "AccessKeyId"), token = xml_value(a.body, "SessionToken");
  char out[128];
  ep_sts_api_set_clock(s, 1.8e9 + 899);
  EXPECT_EQ(0, ep_sts_api_lookup(s, akid.c_str(), token.c_str(), out, sizeof out));
  ep_sts_api_set_clock(s, 1.8e9 + 900);
  EXPECT_EQ(-2, ep_sts_api_lookup(s, akid.c_str(), token.c_str(), out, sizeof out)) << "expired";
  ep_sts_api_free(s);
}

TEST(EndpointSts, MatchesOnlyFormPostsToTheRoot) {
  EXPECT_TRUE(ep_sts_api_matches("POST", "/", "application/x-www-form-urlencoded; charset=utf-8"));
  EXPECT_FALSE(ep_sts_api_matches("POST", "/bucket", "application/x-www-form-urlencoded"));
  EXPECT_FALSE(ep_sts_api_matches("GET", "/", "application/x-www-form-urlencoded"));
  EXPECT_FALSE(ep_sts_api_matches("POST", "/", "application/xml"));
  EXPECT_FALSE(ep_sts_api_matches("POST", "/", nullptr));
}

}  // namespace
