from tests.factory import CUSTOMER, command, open_case


async def test_happy_path(engine):
    state = await engine.cases.open_case(open_case())
    cid = state.case_id
    for cmd in [command("respond", message="Looking into it"),
                command("propose_solution", summary="Restart spooler"),
                command("start_follow_up", follow_up_hours=24),
                command("confirm_solution", CUSTOMER)]:
        state = await engine.cases.send(cid, cmd)
    print(state)
    print([e.type for e in engine.store.history(cid)])
    assert state.stage.value == "closed"
