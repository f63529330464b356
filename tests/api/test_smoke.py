def test_create_runs(api):
    env = api.create()
    assert env["status"] == "CREATING"
    done = api.settled(env["id"])
    assert done["status"] == "RUNNING", done
