// Judge a batch of AWS requests with @cloud-copilot/iam-simulate (a maintained IAM policy simulator).
//
// stdin:  {"cases": [{"id": "...", "principal": "arn:aws:iam::...:role/...", "action": "s3:GetObject",
//                     "resource": "arn:aws:s3:::bucket/key", "accountId": "123456789012",
//                     "context": {"aws:RequestTag/release": "dev", ...},
//                     "identityPolicies": [{"name": "...", "policy": {...}}],
//                     "resourcePolicy": {...} | null}]}
// stdout: {"simulator": "<name>@<version>", "results": [{"id": "...", "result": "Allowed" | "ImplicitlyDenied" |
//          "ExplicitlyDenied" | "Error", "error": "..." | null, "ignoredContextKeys": [...], "resourceType": "...",
//          "decisive": ["<policy>#<statement>", ...]}]}
//
// Strict mode: the request is evaluated exactly as given. One node process judges the whole batch.
import { readFileSync } from "node:fs";
import { runSimulation } from "@cloud-copilot/iam-simulate";

const pkg = JSON.parse(
  readFileSync(new URL("./node_modules/@cloud-copilot/iam-simulate/package.json", import.meta.url), "utf8"),
);

function statementIds(analysis) {
  const out = [];
  const add = (kind, statements) => {
    for (const s of statements || []) {
      out.push(`${kind}:${s.policyId ?? ""}#${s.statementId ?? s.explain?.identifier ?? "?"}`);
    }
  };
  const id = analysis?.identityAnalysis;
  add("identity-allow", id?.allowStatements);
  add("identity-deny", id?.denyStatements);
  const rp = analysis?.resourceAnalysis;
  add("resource-allow", rp?.allowStatements);
  add("resource-deny", rp?.denyStatements);
  return out;
}

async function judge(c) {
  const simulation = {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.accountId },
      contextVariables: c.context || {},
    },
    identityPolicies: c.identityPolicies || [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  if (c.resourcePolicy) simulation.resourcePolicy = c.resourcePolicy;
  const response = await runSimulation(simulation, { simulationMode: "Strict" });
  if (response.resultType === "error") {
    return { id: c.id, result: "Error", error: JSON.stringify(response.errors), ignoredContextKeys: [], decisive: [] };
  }
  const results = response.resultType === "single" ? [response.result] : response.results;
  const ignored = [...new Set(results.flatMap((r) => r.ignoredContextKeys || []))].sort();
  return {
    id: c.id,
    result: response.overallResult,
    error: null,
    ignoredContextKeys: ignored,
    resourceType: results.map((r) => r.resourceType).filter(Boolean).join(","),
    decisive: results.flatMap((r) => statementIds(r.analysis)),
  };
}

const input = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const c of input.cases) {
  results.push(await judge(c));
}
process.stdout.write(JSON.stringify({ simulator: `${pkg.name}@${pkg.version}`, results }) + "\n");
