import t from 'tap'
import { auditActor } from '../../src/audit/index.js'

t.test(
  'auditActor records the caller, the person a bot acts for, and where the request came from',
  async (t) => {
    const cases = [
      {
        name: 'a person through the API',
        principal: {
          subject: 'ann',
          teams: ['payments'],
          roles: ['requester' as const],
          channel: 'api' as const,
        },
        context: { requestId: 'req-1', sourceIp: '192.0.2.1', userAgent: 'curl/8' },
        actor: {
          actorSubject: 'ann',
          onBehalfOf: null,
          actorTeams: ['payments'],
          channel: 'api',
          sourceIp: '192.0.2.1',
          userAgent: 'curl/8',
          requestId: 'req-1',
        },
      },
      {
        name: 'a bot acting for a person, without client details',
        principal: {
          subject: 'chatbot',
          onBehalfOf: 'bob',
          teams: ['platform', 'sre'],
          roles: ['bot' as const],
          channel: 'slack' as const,
        },
        context: { requestId: 'req-2' },
        actor: {
          actorSubject: 'chatbot',
          onBehalfOf: 'bob',
          actorTeams: ['platform', 'sre'],
          channel: 'slack',
          sourceIp: null,
          userAgent: null,
          requestId: 'req-2',
        },
      },
    ]
    for (const { name, principal, context, actor } of cases) {
      t.same(auditActor(principal, context), actor, name)
    }
    const principal = { subject: 'x', teams: ['a'], roles: [], channel: 'system' as const }
    const actor = auditActor(principal, { requestId: 'r' })
    principal.teams.push('b')
    t.same(actor.actorTeams, ['a'], 'the teams are copied, not shared')
  },
)
