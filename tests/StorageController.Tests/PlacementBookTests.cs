using FsCheck;
using FsCheck.Fluent;
using Storage.Core.Errors;
using Storage.Core.Storage;

namespace Storage.StorageController.Tests;

/// <summary>The placement rules and generations of <see cref="PlacementBook"/>, over a <see cref="ControllerStore"/> in a temp dir.</summary>
public sealed class PlacementBookTests : IDisposable
{
    private const string Tenant = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string T1 = "00000000000000000000000000000001";
    private const string T2 = "00000000000000000000000000000002";
    private const string T3 = "00000000000000000000000000000003";
    private static readonly string[] AllThree = ["ps-1", "ps-2", "ps-3"];

    private readonly string _root = Directory.CreateTempSubdirectory("sc-placement-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string StatePath => Path.Combine(_root, "controller.state");

    private PlacementBook OpenBook() => new(new ControllerStore(StatePath));

    private static string Address(string node) => $"http://{node}:9898";

    private static ServiceException AssertFailure(FailureKind kind, Action action)
    {
        var e = Assert.ThrowsAny<ServiceException>(action);
        Assert.Equal(kind, e.Kind);
        return e;
    }

    // ---- Register ----

    [Fact]
    public void Register_records_the_node_with_its_address()
    {
        var book = OpenBook();

        var locations = book.Register("ps-1", Address("ps-1"));

        Assert.Empty(locations);
        Assert.Equal(new NodeRecord("ps-1", Address("ps-1")), book.Node("ps-1"));
        Assert.Equal(["ps-1"], book.Nodes.Select(n => n.Id));
    }

    [Fact]
    public void Register_again_with_a_new_address_replaces_the_address()
    {
        var book = OpenBook();
        book.Register("ps-1", Address("ps-1"));

        book.Register("ps-1", "http://elsewhere:1234");

        Assert.Equal("http://elsewhere:1234", book.Node("ps-1")!.Address);
        Assert.Single(book.Nodes);
    }

    [Theory]
    [InlineData("", "http://ps:9898")]
    [InlineData("  ", "http://ps:9898")]
    [InlineData("ps-1", "not an address")]
    public void Register_rejects_an_empty_node_id_or_a_non_absolute_address(string nodeId, string address)
    {
        var book = OpenBook();

        AssertFailure(FailureKind.InvalidArgument, () => book.Register(nodeId, address));

        Assert.Empty(book.Nodes);
    }

    [Fact]
    public void Registering_again_bumps_only_the_generations_of_timelines_attached_to_that_node_and_returns_its_attached_and_secondary_timelines()
    {
        var book = OpenBook();
        var t1 = book.Place(Tenant, T1, AllThree, ancestor: null);          // ps-1 attached, ps-2 secondary
        var t2 = book.Place(Tenant, T2, AllThree, ancestor: null);          // ps-2 attached, ps-1 secondary
        var t3 = book.Place(Tenant, T3, ["ps-2", "ps-3"], ancestor: null);  // ps-3 attached, ps-2 secondary
        Assert.Equal(("ps-1", "ps-2"), (t1.Attached, t1.Secondary));
        Assert.Equal(("ps-2", "ps-1"), (t2.Attached, t2.Secondary));
        Assert.Equal(("ps-3", "ps-2"), (t3.Attached, t3.Secondary));

        var locations = book.Register("ps-1", Address("ps-1"));

        Assert.Equal(2UL, book.Get(Tenant, T1).Generation);
        Assert.Equal(1UL, book.Get(Tenant, T2).Generation); // ps-1 is only its secondary
        Assert.Equal(1UL, book.Get(Tenant, T3).Generation); // another node's timeline
        Assert.Equal([T1, T2], locations.Select(p => p.TimelineId).Order(StringComparer.Ordinal));
        Assert.Equal(2UL, locations.Single(p => p.TimelineId == T1).Generation);
    }

    [Fact]
    public void Each_registration_of_the_attached_node_issues_the_next_generation()
    {
        var book = OpenBook();
        book.Place(Tenant, T1, ["ps-1"], ancestor: null);

        book.Register("ps-1", Address("ps-1"));
        book.Register("ps-1", Address("ps-1"));
        book.Register("ps-1", Address("ps-1"));

        Assert.Equal(4UL, book.Get(Tenant, T1).Generation);
    }

    // ---- Place ----

    [Fact]
    public void Place_attaches_a_fresh_timeline_to_the_online_node_with_fewest_attached_timelines_breaking_ties_by_name()
    {
        var book = OpenBook();

        var first = book.Place(Tenant, T1, ["ps-3", "ps-2", "ps-1"], ancestor: null);
        var second = book.Place(Tenant, T2, ["ps-3", "ps-2", "ps-1"], ancestor: null);
        var third = book.Place(Tenant, T3, ["ps-1", "ps-2"], ancestor: null); // ps-3 (0 attached) is offline

        Assert.Equal("ps-1", first.Attached);  // all empty: the first name
        Assert.Equal("ps-2", second.Attached); // ps-2 and ps-3 empty: the first name
        Assert.Equal("ps-1", third.Attached);  // ps-1 and ps-2 have one each: the first name
        Assert.All([first, second, third], p => Assert.Equal(1UL, p.Generation));
    }

    [Fact]
    public void Place_puts_the_secondary_on_another_online_node()
    {
        var book = OpenBook();

        var placement = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);

        Assert.Equal("ps-1", placement.Attached);
        Assert.Equal("ps-2", placement.Secondary);
        Assert.Equal(placement, book.Get(Tenant, T1));
    }

    [Fact]
    public void Place_with_a_single_online_node_has_no_secondary()
    {
        var book = OpenBook();

        var placement = book.Place(Tenant, T1, ["ps-2"], ancestor: null);

        Assert.Equal("ps-2", placement.Attached);
        Assert.Null(placement.Secondary);
    }

    [Fact]
    public void A_placed_timeline_is_being_created_until_Created_or_Remove_and_a_reopened_book_forgets_it()
    {
        var book = OpenBook();
        var first = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);
        var second = book.Place(Tenant, T2, ["ps-1", "ps-2"], ancestor: null);
        Assert.True(book.IsBeingCreated(first.Key));
        Assert.True(book.IsBeingCreated(second.Key));

        book.Created(first);
        book.Remove(second);

        Assert.False(book.IsBeingCreated(first.Key));
        Assert.False(book.IsBeingCreated(second.Key));
        var third = book.Place(Tenant, T3, ["ps-1", "ps-2"], ancestor: null);
        Assert.False(OpenBook().IsBeingCreated(third.Key)); // the create call died with the controller
    }

    [Fact]
    public void Place_with_no_online_node_is_unavailable_and_records_nothing()
    {
        var book = OpenBook();

        AssertFailure(FailureKind.Unavailable, () => book.Place(Tenant, T1, [], ancestor: null));

        Assert.Empty(book.Placements);
    }

    [Fact]
    public void Place_of_an_already_placed_timeline_is_already_exists_and_keeps_the_placement()
    {
        var book = OpenBook();
        var original = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);

        AssertFailure(FailureKind.AlreadyExists, () => book.Place(Tenant, T1, ["ps-3"], ancestor: null));

        Assert.Equal(original, book.Get(Tenant, T1));
    }

    [Theory]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0000000000000000000000000000001")]   // 31 characters
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "000000000000000000000000000000001")] // 33 characters
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0000000000000000000000000000000g")]  // not hex
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "00000000000000000000000000000001")]  // upper case
    [InlineData("", "00000000000000000000000000000001")]
    public void Place_rejects_ids_that_are_not_32_lower_case_hex_characters(string tenantId, string timelineId)
    {
        var book = OpenBook();

        AssertFailure(FailureKind.InvalidArgument, () => book.Place(tenantId, timelineId, AllThree, ancestor: null));

        Assert.Empty(book.Placements);
    }

    [Fact]
    public void Place_of_a_branch_attaches_it_to_the_ancestors_node_even_if_that_node_is_the_busiest()
    {
        var book = OpenBook();
        var ancestor = book.Place(Tenant, T1, AllThree, ancestor: null);
        book.Place(Tenant, T3, ["ps-1"], ancestor: null); // ps-1 now holds two attached timelines
        Assert.Equal("ps-1", ancestor.Attached);

        var branch = book.Place(Tenant, T2, AllThree, ancestor);

        Assert.Equal("ps-1", branch.Attached);
        Assert.NotNull(branch.Secondary);
        Assert.NotEqual("ps-1", branch.Secondary);
    }

    [Fact]
    public void Place_of_a_branch_whose_ancestors_node_is_offline_is_unavailable()
    {
        var book = OpenBook();
        var ancestor = book.Place(Tenant, T1, AllThree, ancestor: null);

        var e = AssertFailure(FailureKind.Unavailable, () => book.Place(Tenant, T2, ["ps-2", "ps-3"], ancestor));

        Assert.Contains("ps-1", e.Message);
        Assert.DoesNotContain(book.Placements, p => p.TimelineId == T2);
    }

    // ---- Promote ----

    [Fact]
    public void Promote_swaps_attached_and_secondary_bumps_the_generation_and_counts_a_failover()
    {
        var book = OpenBook();
        var before = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);

        var promoted = book.Promote(before.Key, "ps-1");

        Assert.NotNull(promoted);
        Assert.Equal(("ps-2", "ps-1", 2UL), (promoted.Attached, promoted.Secondary, promoted.Generation));
        Assert.Equal(promoted, book.Get(Tenant, T1));
        Assert.Equal(1UL, book.Failovers);
    }

    [Fact]
    public void Promote_back_again_issues_yet_another_generation()
    {
        var book = OpenBook();
        var placement = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);
        book.Promote(placement.Key, "ps-1");

        var back = book.Promote(placement.Key, "ps-2");

        Assert.Equal(("ps-1", "ps-2", 3UL), (back!.Attached, back.Secondary, back.Generation));
        Assert.Equal(2UL, book.Failovers);
    }

    [Fact]
    public void Promote_without_a_secondary_returns_null_and_changes_nothing()
    {
        var book = OpenBook();
        var placement = book.Place(Tenant, T1, ["ps-1"], ancestor: null);

        Assert.Null(book.Promote(placement.Key, "ps-1"));

        Assert.Equal(placement, book.Get(Tenant, T1));
        Assert.Equal(0UL, book.Failovers);
    }

    [Fact]
    public void Promote_when_the_failed_node_is_not_the_attached_one_returns_null_and_changes_nothing()
    {
        var book = OpenBook();
        var placement = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);

        Assert.Null(book.Promote(placement.Key, "ps-2")); // the secondary failed, not the attached node
        Assert.Null(book.Promote(placement.Key, "ps-3")); // a node that does not hold it

        Assert.Equal(placement, book.Get(Tenant, T1));
        Assert.Equal(0UL, book.Failovers);
    }

    [Fact]
    public void Promote_of_an_unknown_timeline_returns_null()
    {
        var book = OpenBook();

        Assert.Null(book.Promote(PlacementBook.Key(Tenant, T1), "ps-1"));
    }

    // ---- AssignSecondary ----

    [Fact]
    public void AssignSecondary_gives_a_timeline_without_one_a_secondary_but_never_its_attached_node_nor_a_second_one()
    {
        var book = OpenBook();
        var placement = book.Place(Tenant, T1, ["ps-1"], ancestor: null);

        Assert.Null(book.AssignSecondary(placement.Key, "ps-1"));
        var assigned = book.AssignSecondary(placement.Key, "ps-2");
        Assert.Null(book.AssignSecondary(placement.Key, "ps-3"));

        Assert.Equal(placement with { Secondary = "ps-2" }, assigned);
        Assert.Equal(assigned, book.Get(Tenant, T1));
    }

    // ---- IsCurrent ----

    [Fact]
    public void IsCurrent_holds_only_for_the_attached_node_with_the_current_generation()
    {
        var book = OpenBook();
        var placement = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);
        book.Register("ps-1", Address("ps-1")); // generation 2

        Assert.True(book.IsCurrent("ps-1", Tenant, T1, 2));
        Assert.False(book.IsCurrent("ps-1", Tenant, T1, 1)); // an earlier incarnation
        Assert.False(book.IsCurrent("ps-1", Tenant, T1, 3)); // not issued yet
        Assert.False(book.IsCurrent("ps-2", Tenant, T1, 2)); // the secondary
        Assert.False(book.IsCurrent("ps-1", Tenant, T2, 2)); // another timeline
        Assert.Equal(2UL, book.Get(placement.TenantId, placement.TimelineId).Generation);
    }

    [Fact]
    public void IsCurrent_moves_to_the_promoted_node()
    {
        var book = OpenBook();
        var placement = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);

        book.Promote(placement.Key, "ps-1");

        Assert.False(book.IsCurrent("ps-1", Tenant, T1, 1));
        Assert.False(book.IsCurrent("ps-1", Tenant, T1, 2));
        Assert.True(book.IsCurrent("ps-2", Tenant, T1, 2));
    }

    [Fact]
    public void Get_of_an_unplaced_timeline_is_not_found()
    {
        var book = OpenBook();

        AssertFailure(FailureKind.NotFound, () => book.Get(Tenant, T1));
    }

    // ---- Persistence ----

    [Fact]
    public void The_state_survives_reopening_the_store_from_the_same_file()
    {
        var book = OpenBook();
        book.Register("ps-1", Address("ps-1"));
        book.Register("ps-2", Address("ps-2"));
        var t1 = book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);
        book.Place(Tenant, T2, ["ps-1"], ancestor: null);
        book.Promote(t1.Key, "ps-1");
        book.Register("ps-1", Address("ps-1"));

        var reopened = OpenBook();

        Assert.Equal(book.Nodes, reopened.Nodes);
        Assert.Equal(book.Placements, reopened.Placements);
        Assert.Equal(1UL, reopened.Failovers);
        Assert.Equal(("ps-2", 2UL), (reopened.Get(Tenant, T1).Attached, reopened.Get(Tenant, T1).Generation));
        Assert.Equal(2UL, reopened.Get(Tenant, T2).Generation);
        Assert.True(reopened.IsCurrent("ps-2", Tenant, T1, 2));
    }

    [Fact]
    public void A_reopened_store_issues_generations_above_those_issued_before()
    {
        var book = OpenBook();
        book.Place(Tenant, T1, ["ps-1", "ps-2"], ancestor: null);
        book.Register("ps-1", Address("ps-1"));

        var reopened = OpenBook();
        reopened.Register("ps-1", Address("ps-1"));

        Assert.Equal(3UL, reopened.Get(Tenant, T1).Generation);
    }

    [Fact]
    public void A_corrupted_state_file_makes_opening_the_store_throw()
    {
        var book = OpenBook();
        book.Register("ps-1", Address("ps-1"));
        book.Place(Tenant, T1, ["ps-1"], ancestor: null);
        var bytes = File.ReadAllBytes(StatePath);
        bytes[bytes.Length / 2] ^= 0x20;
        File.WriteAllBytes(StatePath, bytes);

        var e = Assert.Throws<CorruptFileException>(() => new ControllerStore(StatePath));

        Assert.Equal(StatePath, e.FilePath);
    }

    [Fact]
    public void A_generation_whose_write_fails_is_never_shown_and_a_placement_not_marked_as_being_created()
    {
        var directory = Path.Combine(_root, "state");
        Directory.CreateDirectory(directory);
        var book = new PlacementBook(new ControllerStore(Path.Combine(directory, "state.bin")));
        book.Register("ps-1", Address("ps-1"));
        var t1 = book.Place(Tenant, T1, ["ps-1"], ancestor: null);
        book.Created(t1);

        // The directory replaced by a file: every write fails, for root too.
        Directory.Move(directory, directory + ".away");
        File.WriteAllText(directory, "");
        Assert.ThrowsAny<IOException>(() => book.Register("ps-1", Address("ps-1")));
        Assert.ThrowsAny<IOException>(() => book.Place(Tenant, T2, ["ps-1"], ancestor: null));
        Assert.Equal(1UL, book.Get(Tenant, T1).Generation);
        Assert.True(book.IsCurrent("ps-1", Tenant, T1, 1));
        Assert.Equal([t1.Key], book.Placements.Select(p => p.Key));
        Assert.False(book.IsBeingCreated(PlacementBook.Key(Tenant, T2)));

        File.Delete(directory);
        Directory.Move(directory + ".away", directory);
        Assert.Equal(2UL, book.Register("ps-1", Address("ps-1")).Single().Generation);
        Assert.True(book.IsBeingCreated(book.Place(Tenant, T2, ["ps-1"], ancestor: null).Key));
    }

    // ---- Properties over random operation sequences ----

    private static readonly string[] NodeNames = ["ps-a", "ps-b", "ps-c"];
    private static readonly string[] TimelineIds =
        ["10000000000000000000000000000000", "20000000000000000000000000000000", "30000000000000000000000000000000", "40000000000000000000000000000000"];

    private enum OpKind { Register, Place, Promote, AssignSecondary }

    /// <summary>One random operation; <see cref="A"/>, <see cref="B"/>, <see cref="C"/> pick its arguments.</summary>
    private sealed record Op(OpKind Kind, int A, int B, int C);

    private static readonly Arbitrary<Op[]> Sequences =
        Gen.Choose(1, 60).SelectMany(length => Gen.ArrayOf(
            Gen.Elements(OpKind.Register, OpKind.Place, OpKind.Promote, OpKind.AssignSecondary).SelectMany(kind =>
                Gen.Choose(0, 99).SelectMany(a => Gen.Choose(0, 99).SelectMany(b => Gen.Choose(0, 99).Select(c => new Op(kind, a, b, c)))))
            , length)).ToArbitrary();

    /// <summary>What a run did, so a guard can check the sequences are not trivial.</summary>
    private sealed record RunStats(int Promotions, int ReRegistrationsOfAttached, int Placements);

    /// <summary>
    /// Applies the operations to a fresh book, checking the invariants after every one of them
    /// (and that a reopened store has the same state at the end).
    /// </summary>
    private static RunStats RunAndCheck(Op[] ops)
    {
        var root = Directory.CreateTempSubdirectory("sc-placement-prop-").FullName;
        try
        {
            var path = Path.Combine(root, "controller.state");
            var book = new PlacementBook(new ControllerStore(path));
            int promotions = 0, reRegistrations = 0, placed = 0;
            foreach (var op in ops)
            {
                var before = book.Placements.ToDictionary(p => p.Key);
                var bumped = new HashSet<string>();
                switch (op.Kind)
                {
                    case OpKind.Register:
                    {
                        var node = NodeNames[op.A % NodeNames.Length];
                        var result = book.Register(node, Address(node));
                        bumped.UnionWith(before.Values.Where(p => p.Attached == node).Select(p => p.Key));
                        if (bumped.Count > 0) reRegistrations++;
                        Assert.Equal(
                            before.Values.Where(p => p.Attached == node || p.Secondary == node).Select(p => p.Key).Order(StringComparer.Ordinal),
                            result.Select(p => p.Key).Order(StringComparer.Ordinal));
                        break;
                    }
                    case OpKind.Place:
                    {
                        var timeline = TimelineIds[op.A % TimelineIds.Length];
                        var online = NodeNames.Where((_, i) => (op.B & (1 << i)) != 0).ToList();
                        var ancestor = op.C % 3 == 0 ? before.GetValueOrDefault(PlacementBook.Key(Tenant, TimelineIds[op.C / 3 % TimelineIds.Length])) : null;
                        try
                        {
                            var placement = book.Place(Tenant, timeline, online, ancestor);
                            placed++;
                            Assert.False(before.ContainsKey(placement.Key));
                            Assert.Equal(1UL, placement.Generation);
                            Assert.Contains(placement.Attached, online);
                            if (ancestor != null) Assert.Equal(ancestor.Attached, placement.Attached);
                            if (placement.Secondary != null) Assert.Contains(placement.Secondary, online);
                            else Assert.Single(online);
                        }
                        catch (AlreadyExistsException)
                        {
                            Assert.True(before.ContainsKey(PlacementBook.Key(Tenant, timeline)));
                        }
                        catch (TemporarilyUnavailableException)
                        {
                            Assert.True(online.Count == 0 || (ancestor != null && !online.Contains(ancestor.Attached)));
                        }
                        break;
                    }
                    case OpKind.Promote:
                    {
                        var key = PlacementBook.Key(Tenant, TimelineIds[op.A % TimelineIds.Length]);
                        var current = before.GetValueOrDefault(key);
                        // Mostly away from the attached node, sometimes from an arbitrary one.
                        var failed = op.B % 4 != 0 && current != null ? current.Attached : NodeNames[op.B % NodeNames.Length];
                        var promoted = book.Promote(key, failed);
                        if (promoted != null)
                        {
                            promotions++;
                            bumped.Add(key);
                            Assert.Equal((current!.Secondary, current.Attached), (promoted.Attached, promoted.Secondary));
                        }
                        else Assert.True(current is null || current.Attached != failed || current.Secondary is null);
                        break;
                    }
                    case OpKind.AssignSecondary:
                    {
                        var key = PlacementBook.Key(Tenant, TimelineIds[op.A % TimelineIds.Length]);
                        book.AssignSecondary(key, NodeNames[op.B % NodeNames.Length]);
                        break;
                    }
                }
                CheckInvariants(book, before, bumped, op);
                Assert.Equal((ulong)promotions, book.Failovers);
            }
            var reopened = new PlacementBook(new ControllerStore(path));
            Assert.Equal(book.Placements, reopened.Placements);
            Assert.Equal(book.Nodes, reopened.Nodes);
            Assert.Equal(book.Failovers, reopened.Failovers);
            return new RunStats(promotions, reRegistrations, placed);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void CheckInvariants(PlacementBook book, Dictionary<string, PlacementRecord> before, HashSet<string> bumped, Op op)
    {
        foreach (var p in book.Placements)
        {
            Assert.True(p.Attached != p.Secondary, $"{p.Key}: attached and secondary are both {p.Attached} after {op}");
            if (before.TryGetValue(p.Key, out var old))
            {
                if (bumped.Contains(p.Key))
                    Assert.True(p.Generation > old.Generation, $"{p.Key}: generation {old.Generation} -> {p.Generation} after {op}, expected an increase");
                else
                    Assert.True(p.Generation == old.Generation, $"{p.Key}: generation {old.Generation} -> {p.Generation} after {op}, expected no change");
            }
            // IsCurrent for exactly the (attached, generation) pair.
            foreach (var node in NodeNames.Append(p.Attached).Distinct())
                for (ulong g = 0; g <= p.Generation + 1; g++)
                    Assert.True(book.IsCurrent(node, p.TenantId, p.TimelineId, g) == (node == p.Attached && g == p.Generation),
                        $"IsCurrent({node}, {p.Key}, {g}) is wrong for {p} after {op}");
        }
        // A timeline is never forgotten by these operations.
        var after = book.Placements.Select(p => p.Key).ToHashSet();
        Assert.All(before.Keys, key => Assert.Contains(key, after));
    }

    [Fact]
    public void Random_operation_sequences_keep_attached_and_secondary_apart_generations_monotonic_and_IsCurrent_exact()
    {
        var property = Prop.ForAll(Sequences, ops => { RunAndCheck(ops); });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(100), property);
    }

    [Fact]
    public void Random_operation_sequences_do_exercise_promotions_and_re_registrations()
    {
        // Guards the property above against passing vacuously: the same generator must produce
        // runs that place timelines, promote them and re-register their attached nodes.
        int runs = 0, withPromotion = 0, withReRegistration = 0, withBoth = 0;
        var property = Prop.ForAll(Sequences, ops =>
        {
            var stats = RunAndCheck(ops);
            runs++;
            if (stats.Promotions > 0) withPromotion++;
            if (stats.ReRegistrationsOfAttached > 0) withReRegistration++;
            if (stats.Promotions > 0 && stats.ReRegistrationsOfAttached > 0) withBoth++;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(100), property);

        Assert.Equal(100, runs);
        Assert.True(withPromotion > 30, $"only {withPromotion} of {runs} runs promoted a timeline");
        Assert.True(withReRegistration > 30, $"only {withReRegistration} of {runs} runs re-registered an attached node");
        Assert.True(withBoth > 20, $"only {withBoth} of {runs} runs did both");
    }
}
