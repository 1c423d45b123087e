// A small leadflow client written against the types that openapi-typescript generates from
// openapi/openapi.json (into generated/schema.ts). tests/contract/test_typescript_client.py
// compiles it with `tsc --strict` (a missing schema, a renamed operationId or path, or a
// changed field type fails the compilation), then runs it against a live server.
//
// Run by hand: npm ci && npm run generate && npm run check &&
//   LEADFLOW_URL=http://127.0.0.1:8000 LEADFLOW_ADMIN_TOKEN=... npm run call

import createClient from "openapi-fetch";
import type { components, operations, paths, webhooks } from "./generated/schema.js";

type Problem = components["schemas"]["Problem"];
type JsonOf<R> = R extends { content: { "application/json": infer Body } } ? Body : never;

// Operations named by their operationId: renaming one breaks these lines.
type NewCampaign = JsonOf<operations["createCampaign"]["requestBody"]>;
type Campaign = JsonOf<operations["createCampaign"]["responses"][201]>;
type CampaignPage = JsonOf<operations["listCampaigns"]["responses"][200]>;
type AbTestResult = JsonOf<operations["getAbTest"]["responses"][200]>;
type LeadPage = JsonOf<operations["listLeads"]["responses"][200]>;
type Stats = JsonOf<operations["getStats"]["responses"][200]>;
type AccountCreated = JsonOf<operations["createAccount"]["responses"][201]>;

// What an instant lead notification receiver is handed (a webhook of the document).
type LeadCaptured = JsonOf<webhooks["lead.captured"]["post"]["requestBody"]>;

export function describeCapture(notification: LeadCaptured): string {
  return `${notification.type} ${notification.data.lead.id} at ${notification.timestamp}`;
}

function fail(step: string, status: number, problem: Problem | undefined): never {
  const why = problem ? `${problem.code}: ${problem.detail ?? problem.title}` : "no problem body";
  throw new Error(`${step} answered ${status} (${why})`);
}

function expect<T>(
  step: string,
  status: number,
  result: { data?: T; error?: Problem; response: Response },
): T {
  if (result.response.status !== status || result.data === undefined) {
    fail(step, result.response.status, result.error);
  }
  return result.data;
}

function leadIds(page: LeadPage): string[] {
  return page.items.map((lead) => lead.id);
}

type Variant = AbTestResult["variants"][number];

function variantNames(result: { variants: Pick<Variant, "name" | "leads_assigned">[] }): string[] {
  return result.variants.map((variant) => `${variant.name}:${variant.leads_assigned}`);
}

function campaignIds(page: CampaignPage): string[] {
  return page.items.map((campaign) => campaign.id);
}

function overallFollowups(stats: Stats): number {
  return stats.overall.followups_sent;
}

async function main(): Promise<void> {
  const baseUrl = process.env.LEADFLOW_URL;
  const adminToken = process.env.LEADFLOW_ADMIN_TOKEN;
  if (!baseUrl || !adminToken) {
    throw new Error("set LEADFLOW_URL and LEADFLOW_ADMIN_TOKEN");
  }

  const admin = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${adminToken}` },
  });
  const account: AccountCreated = expect(
    "createAccount",
    201,
    await admin.POST("/v1/admin/accounts", { body: { name: "Acme Shop (TypeScript)" } }),
  );

  const api = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${account.api_key}` },
  });
  const body: NewCampaign = {
    name: "Cart recovery A/B",
    source: "abandoned_checkout",
    status: "active",
    variants: [
      { name: "A", weight: 1, steps: [{ delay: "PT2H", template: "abandoned_checkout/1" }] },
      { name: "B", weight: 1, steps: [{ delay: "PT4H", template: "abandoned_checkout/1" }] },
    ],
    ab_test: { criterion: "conversions", threshold: 10, keep_best: true },
  };
  const campaign: Campaign = expect(
    "createCampaign",
    201,
    await api.POST("/v1/campaigns", { body }),
  );
  const path = { campaign_id: campaign.id };
  const listed = expect("listCampaigns", 200, await api.GET("/v1/campaigns"));
  const shown = expect(
    "getCampaign",
    200,
    await api.GET("/v1/campaigns/{campaign_id}", { params: { path } }),
  );
  const abTest = expect(
    "getAbTest",
    200,
    await api.GET("/v1/campaigns/{campaign_id}/ab-test", { params: { path } }),
  );
  const leads = expect(
    "listLeads",
    200,
    await api.GET("/v1/leads", { params: { query: { limit: 10 } } }),
  );
  const stats = expect(
    "getStats",
    200,
    await api.GET("/v1/stats", { params: { query: { campaign_id: campaign.id } } }),
  );
  const missing = await api.GET("/v1/campaigns/{campaign_id}", {
    params: { path: { campaign_id: "cmp_missing" } },
  });

  console.log(
    JSON.stringify({
      account_id: account.id,
      campaign: { id: campaign.id, status: campaign.status, created_at: campaign.created_at },
      listed: campaignIds(listed),
      next_cursor: listed.next_cursor,
      shown: { id: shown.id, variants: shown.variants.map((variant) => variant.name) },
      ab_test: { campaign_id: abTest.campaign_id, state: abTest.state, variants: variantNames(abTest) },
      leads: leadIds(leads),
      followups_sent: overallFollowups(stats),
      missing: { status: missing.response.status, code: missing.error?.code ?? null },
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
