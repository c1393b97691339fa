"""The workflow files of the engine tests, by workflow type.

Each is a complete YAML file (see :func:`tests.support.config.workflow` for the header it gets).
The ``engine`` fixtures write all of them into a fresh config directory for every test.
"""

from __future__ import annotations

from tests.support.config import STEPS as S
from tests.support.config import workflow

WORKFLOWS: dict[str, str] = {
    # Every STANDARD flavour, one step each, run one call at a time.
    "Standard": workflow(
        "Standard",
        f"""
        - name: Validate
          function: {S}.mark_with_junk
        - name: Charge
          function: {S}.charge_async
        - name: Quiet
          function: {S}.return_none
        - name: Greet
          function: {S}.greet
        - name: Collect
          function: {S}.collect_kwargs
        """,
    ),
    "InPlace": workflow(
        "InPlace",
        f"""
        - name: Touch
          function: {S}.mutate_in_place
        """,
    ),
    # automate_next: one call runs A, B and C, and stops before D.
    "Chain": workflow(
        "Chain",
        f"""
        - name: A
          function: {S}.mark
          automate_next: true
        - name: B
          function: {S}.remember_previous
          automate_next: true
        - name: C
          function: {S}.mark
        - name: D
          function: {S}.mark
        """,
    ),
    # ``next:`` skips Second, and END stops before Fourth.
    "NextKey": workflow(
        "NextKey",
        f"""
        - name: First
          function: {S}.mark
          next: Third
        - name: Second
          function: {S}.mark
        - name: Third
          function: {S}.mark
          next: END
        - name: Fourth
          function: {S}.mark
        """,
    ),
    "Decide": workflow(
        "Decide",
        f"""
        - name: Score
          type: DECISION
          function: {S}.score
          routes:
            - condition: "score > 100"
              target: Big
            - condition: "state.amount > 10"
              next_step: Medium
            - default: Small
        - name: Big
          function: {S}.mark
          next: END
        - name: Medium
          function: {S}.mark
          next: END
        - name: Small
          function: {S}.mark
        """,
    ),
    "DecideStrict": workflow(
        "DecideStrict",
        f"""
        - name: Check
          type: DECISION
          routes:
            - condition: "amount > 1000"
              target: Manual
        - name: Manual
          function: {S}.mark
        """,
    ),
    "DecideByJump": workflow(
        "DecideByJump",
        f"""
        - name: Route
          type: DECISION
          function: {S}.jump_to_finish
        - name: Middle
          function: {S}.mark
        - name: Finish
          function: {S}.mark
        """,
    ),
    "JumpForward": workflow(
        "JumpForward",
        f"""
        - name: Start
          function: {S}.jump_to_finish
        - name: Middle
          function: {S}.mark
        - name: Other
          function: {S}.mark
        - name: Finish
          function: {S}.mark
        """,
    ),
    "Loop": workflow(
        "Loop",
        f"""
        - name: Start
          function: {S}.mark
        - name: Work
          function: {S}.mark
        - name: Check
          function: {S}.loop_back_once
        - name: Finish
          function: {S}.mark
        """,
    ),
    "JumpNowhere": workflow(
        "JumpNowhere",
        f"""
        - name: Start
          function: {S}.jump_nowhere
        - name: Finish
          function: {S}.mark
        """,
    ),
    # A HUMAN_IN_LOOP step reached through automate_next.
    "Approval": workflow(
        "Approval",
        f"""
        - name: Prepare
          function: {S}.mark
          automate_next: true
        - name: Approve
          type: HUMAN_IN_LOOP
          function: {S}.approve
          input_model: {S}.ApprovalInput
        - name: Ship
          function: {S}.mark
        """,
    ),
    # A HUMAN_IN_LOOP step first: the first call decides whether it waits.
    "ApprovalFirst": workflow(
        "ApprovalFirst",
        f"""
        - name: Approve
          type: HUMAN_IN_LOOP
          function: {S}.approve
          input_model: {S}.ApprovalInput
          automate_next: true
        - name: Ship
          function: {S}.mark
        """,
    ),
    # A HUMAN_IN_LOOP step without a function: the input is merged into the state.
    "Review": workflow(
        "Review",
        f"""
        - name: Review
          type: HUMAN_IN_LOOP
          next: END
        - name: Never
          function: {S}.mark
        """,
    ),
    # WorkflowPauseDirective: the paused step counts as done, the next one gets the input.
    "Pause": workflow(
        "Pause",
        f"""
        - name: Submit
          function: {S}.pause_for_review
        - name: Review
          function: {S}.record_review
          input_model: {S}.ReviewInput
          automate_next: true
        - name: Done
          function: {S}.mark
        """,
    ),
    # The step after a pause fails when the workflow resumes.
    "PauseThenFail": workflow(
        "PauseThenFail",
        f"""
        - name: Submit
          function: {S}.pause_for_review
        - name: Explode
          function: {S}.always_fails
        """,
    ),
    "PauseLast": workflow(
        "PauseLast",
        f"""
        - name: Submit
          function: {S}.pause_for_review
        """,
    ),
    "NotImplemented": workflow(
        "NotImplemented",
        f"""
        - name: Start
          function: {S}.mark
        - name: Spawn
          type: FIRE_AND_FORGET
          target_workflow_type: Standard
        - name: Finish
          function: {S}.mark
        """,
    ),
    "Fragile": workflow(
        "Fragile",
        f"""
        - name: Start
          function: {S}.mark
        - name: Explode
          function: {S}.always_fails
        - name: Finish
          function: {S}.mark
        """,
    ),
    "Flaky": workflow(
        "Flaky",
        f"""
        - name: Call
          function: {S}.flaky_until_third
          retry_policy:
            max_attempts: 3
            delay_seconds: 0
        """,
    ),
    "Hopeless": workflow(
        "Hopeless",
        f"""
        - name: Call
          function: {S}.always_fails
          retry_policy:
            max_attempts: 3
            delay: 0
        """,
    ),
    "Recoverable": workflow(
        "Recoverable",
        f"""
        - name: Start
          function: {S}.mark
        - name: Inventory
          function: {S}.fails_until_fixed
        - name: Finish
          function: {S}.mark
        """,
    ),
    "BadMerge": workflow(
        "BadMerge",
        f"""
        - name: Start
          function: {S}.mark
        - name: Corrupt
          function: {S}.bad_amount
        """,
    ),
    "Dirty": workflow(
        "Dirty",
        f"""
        - name: Start
          function: {S}.mark
        - name: Touch
          function: {S}.dirty_then_fail
        """,
    ),
    "Checkout": workflow(
        "Checkout",
        f"""
        - name: Reserve
          function: {S}.reserve_stock
          compensate_function: {S}.release_stock
          automate_next: true
        - name: Charge
          function: {S}.charge_card
          compensate_function: {S}.refund_card
          automate_next: true
        - name: Notify
          function: {S}.mark
        - name: Ship
          function: {S}.ship_order
        """,
        header="saga_enabled: true",
    ),
    "CheckoutBrokenRefund": workflow(
        "CheckoutBrokenRefund",
        f"""
        - name: Reserve
          function: {S}.reserve_stock
          compensate_function: {S}.release_stock
          automate_next: true
        - name: Charge
          function: {S}.charge_card
          compensate_function: {S}.refund_unavailable
          automate_next: true
        - name: Ship
          function: {S}.ship_order
        """,
        header="saga_mode: true",
    ),
    "CheckoutPlain": workflow(
        "CheckoutPlain",
        f"""
        - name: Reserve
          function: {S}.reserve_stock
          compensate_function: {S}.release_stock
          automate_next: true
        - name: Charge
          function: {S}.charge_card
          compensate_function: {S}.refund_card
        - name: Ship
          function: {S}.ship_order
        """,
    ),
    # ``required_input`` without an input_model.
    "Required": workflow(
        "Required",
        f"""
        - name: Greet
          function: {S}.greet
          required_input: [customer]
        """,
    ),
    "Simple": workflow(
        "Simple",
        f"""
        - name: One
          function: {S}.mark
        - name: Two
          function: {S}.mark
        - name: Three
          function: {S}.mark
        """,
    ),
}
