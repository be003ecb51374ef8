/* The reference side of test_dmarc_opendmarc.py: OpenDMARC's own library (libopendmarc) evaluates one
 * scenario with its own policy discovery (opendmarc_policy_query_dmarc, its DNS answered by
 * opendmarc_dns_fake_record, so nothing leaves the machine), its own public-suffix loader and
 * opendmarc_get_policy_to_enforce().
 *
 * usage: opendmarc_check PSL CLIENT_IP FROM_DOMAIN SPF_DOMAIN SPF_RESULT SPF_SCOPE DKIM [NAME=RECORD...]
 *   SPF_RESULT: pass fail softfail neutral none temperror permerror; SPF_SCOPE: mfrom | helo
 *   DKIM: "-" or "d1:result,d2:result"
 * prints: "<result> <policy>" with result pass | fail | none | temperror and policy none | quarantine |
 * reject (the p= or sp= that applies, as OpenDMARC reports it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <opendmarc/dmarc.h>

static int spf_outcome(const char *r) {
  if (!strcmp(r, "pass")) return DMARC_POLICY_SPF_OUTCOME_PASS;
  if (!strcmp(r, "temperror")) return DMARC_POLICY_SPF_OUTCOME_TMPFAIL;
  if (!strcmp(r, "none")) return DMARC_POLICY_SPF_OUTCOME_NONE;
  return DMARC_POLICY_SPF_OUTCOME_FAIL;
}

static int dkim_outcome(const char *r) {
  if (!strcmp(r, "pass")) return DMARC_POLICY_DKIM_OUTCOME_PASS;
  if (!strcmp(r, "temperror")) return DMARC_POLICY_DKIM_OUTCOME_TMPFAIL;
  if (!strcmp(r, "none")) return DMARC_POLICY_DKIM_OUTCOME_NONE;
  return DMARC_POLICY_DKIM_OUTCOME_FAIL;
}

static const char *word(int p) {
  return p == DMARC_RECORD_P_REJECT ? "reject" : p == DMARC_RECORD_P_QUARANTINE ? "quarantine" : "none";
}

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: %s PSL IP FROM SPF_DOMAIN SPF_RESULT SPF_SCOPE DKIM [NAME=RECORD...]\n", argv[0]);
    return 2;
  }
  static OPENDMARC_LIB_T lib;
  memset(&lib, 0, sizeof lib);
  lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
  strncpy((char *)lib.tld_source_file, argv[1], sizeof lib.tld_source_file - 1);
  if (opendmarc_policy_library_init(&lib) != DMARC_PARSE_OKAY) {
    fprintf(stderr, "library init failed\n");
    return 2;
  }
  for (int i = 8; i < argc; ++i) {
    char *eq = strchr(argv[i], '=');
    if (!eq) return 2;
    *eq = '\0';
    opendmarc_dns_fake_record(argv[i], eq + 1);
  }
  DMARC_POLICY_T *p = opendmarc_policy_connect_init((u_char *)argv[2], strchr(argv[2], ':') ? DMARC_POLICY_IP_TYPE_IPV6
                                                                                             : DMARC_POLICY_IP_TYPE_IPV4);
  opendmarc_policy_store_from_domain(p, (u_char *)argv[3]);
  opendmarc_policy_store_spf(p, (u_char *)argv[4], spf_outcome(argv[5]),
                             strcmp(argv[6], "helo") ? DMARC_POLICY_SPF_ORIGIN_MAILFROM : DMARC_POLICY_SPF_ORIGIN_HELO,
                             NULL);
  if (strcmp(argv[7], "-")) {
    char *save = NULL;
    for (char *tok = strtok_r(argv[7], ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      char *colon = strchr(tok, ':');
      if (!colon) return 2;
      *colon = '\0';
      opendmarc_policy_store_dkim(p, (u_char *)tok, (u_char *)"s1", dkim_outcome(colon + 1), NULL);
    }
  }
  int q = opendmarc_policy_query_dmarc(p, (u_char *)argv[3]);
  int enforce = opendmarc_get_policy_to_enforce(p);
  int pp = 0, sp = 0;
  opendmarc_policy_fetch_p(p, &pp);
  opendmarc_policy_fetch_sp(p, &sp);
  const char *result;
  switch (enforce) {
    case DMARC_POLICY_PASS: result = "pass"; break;
    case DMARC_POLICY_REJECT: case DMARC_POLICY_QUARANTINE: case DMARC_POLICY_NONE: result = "fail"; break;
    case DMARC_DNS_ERROR_TMPERR: result = "temperror"; break;
    default: result = "none"; break;
  }
  int used = opendmarc_get_policy_token_used(p);
  const char *policy = !strcmp(result, "none") || !strcmp(result, "temperror") ? "none"
                       : word(used == DMARC_USED_POLICY_IS_SP && sp ? sp : pp);
  printf("%s %s query=%d enforce=%d\n", result, policy, q, enforce);
  opendmarc_policy_connect_shutdown(p);
  return 0;
}
