/**
 * 100 realistic policy rules (ten families × ten teams): model restrictions, role / team
 * conditions, spend and rate guards, PII, tool registration and tool-call rules, and a few `matches`
 * on prompt_text. None of them refuses the benchmark's own calls (team research, role developer,
 * gpt-4o-mini, a plain prompt), so every request walks the whole rule set and is forwarded.
 */
export type RawRule = {
  name: string;
  effect: "ALLOW" | "DENY" | "REQUIRE_APPROVAL";
  conditions: Record<string, unknown>;
  actions?: string[];
  constraints?: Record<string, unknown>;
  description?: string;
  mode?: "enforce" | "dry_run";
};

export const TEAMS = ["research", "support", "sales", "finance", "legal", "ops", "platform", "data", "design", "hr"] as const;

/** Teams whose prompts are screened with a `matches` rule (the expensive kind, so only a few). */
const SCREENED = new Set(["research", "support", "finance", "legal"]);

function teamRules(team: string, i: number): RawRule[] {
  const rules: RawRule[] = [
    {
      name: `${team}_premium_models`,
      effect: "DENY",
      conditions: { team: { eq: team }, model: { in: ["gpt-4o", "o1", "gpt-4.1"] }, user_role: { not_in: ["admin", "power_user"] } },
      description: `${team}: only admins and power users may use premium models`,
    },
    {
      name: `${team}_daily_spend`,
      effect: "DENY",
      conditions: { team: { eq: team }, daily_spend: { gt: 500 + i * 50 }, user_role: { ne: "admin" } },
      description: `${team}: daily spend ceiling for non-admins`,
    },
    {
      name: `${team}_burst`,
      effect: "DENY",
      conditions: { team: { eq: team }, requests_last_minute: { gt: 1_000_000 } },
    },
    {
      name: `${team}_costly_call`,
      effect: "REQUIRE_APPROVAL",
      conditions: { team: { eq: team }, estimated_cost: { gte: 5 + i } },
      constraints: { approver_role: "finance", approval_timeout_seconds: 600 },
    },
    {
      name: `${team}_pii`,
      effect: "REQUIRE_APPROVAL",
      conditions: { team: { eq: team }, data_classification: { eq: "pii" }, purpose: { not_in: ["authorized_support"] } },
      constraints: { approver_role: ["security", "admin"] },
    },
    {
      name: `${team}_contractors`,
      effect: "DENY",
      conditions: { team: { eq: team }, user_role: { eq: "contractor" }, model: { not_in: ["gpt-4o-mini"] } },
    },
    {
      name: `${team}_weekend_batch`,
      effect: "DENY",
      mode: "dry_run",
      conditions: { team: { eq: team }, user_role: { eq: "batch" }, any_of: [{ weekday: { in: [6, 7] } }, { hour: { lt: 6 } }] },
    },
    {
      name: `${team}_dangerous_tools`,
      effect: "DENY",
      actions: ["tool.register", "tool.call"],
      conditions: { team: { eq: team }, tool: { in: ["execute_code", "shell_command", "file_write"] }, user_role: { not_in: ["admin", "developer"] } },
      description: `${team}: only developers may use potentially dangerous tools`,
    },
    {
      name: `${team}_prod_ops`,
      effect: "REQUIRE_APPROVAL",
      actions: ["tool.call"],
      conditions: { team: { eq: team }, tool: { in: ["deploy", "delete_records"] }, "tool_args.environment": { matches: "^prod" } },
      constraints: { approver_role: "admin", approval_timeout_seconds: 3600 },
    },
  ];
  rules.push(
    SCREENED.has(team)
      ? {
          name: `${team}_prompt_secrets`,
          effect: "DENY",
          conditions: { team: { eq: team }, prompt_text: { matches: "(?i)(api[_-]?key|password|secret)\\s*[:=]" } },
          description: `${team}: credentials must not be pasted into prompts`,
        }
      : {
          name: `${team}_large_outputs`,
          effect: "DENY",
          conditions: { team: { eq: team }, max_output_tokens: { gt: 100_000 } },
        },
  );
  return rules;
}

export function benchRules(): RawRule[] {
  return TEAMS.flatMap((team, i) => teamRules(team, i));
}

/** Forces an exact input-token count on every call (the 20k-token variant). */
export const TOKEN_RULE: RawRule = {
  name: "huge_prompts",
  effect: "DENY",
  conditions: { input_tokens: { gt: 1_000_000 } },
  description: "prompts over a million tokens are refused",
};
